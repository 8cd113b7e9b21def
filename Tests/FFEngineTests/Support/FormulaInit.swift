import FFEngine
import Foundation
import XCTest

/// Swift twin of tools/golden/formula.py: deterministic tensors from a name, identical bit
/// for bit to the Python side, so full-size networks can be compared with PyTorch without
/// committing their weights. See formula.py for the rules.
enum Formula {
    static func fnv1a(_ s: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return h
    }

    static func uniforms(_ name: String, _ count: Int) -> [Double] {
        let h = fnv1a(name)
        return (0..<count).map { i in
            var z = h &+ UInt64(i) &* 0x9E37_79B9_7F4A_7C15 &+ 0x9E37_79B9_7F4A_7C15
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            return Double(z >> 40) / 16_777_216
        }
    }

    static func values(_ name: String, shape: [Int]) -> [Float] {
        let u = uniforms(name, shape.reduce(1, *))
        if name.hasSuffix("running_var") { return u.map { Float(0.5 + $0) } }
        if name.hasSuffix("running_mean") { return u.map { Float(0.2 * (2 * $0 - 1)) } }
        if shape.count == 1 {
            return name.hasSuffix(".weight") ? u.map { Float(1 + 0.2 * (2 * $0 - 1)) } : u.map { Float(0.1 * (2 * $0 - 1)) }
        }
        let bound = (6.0 / Double(shape.dropFirst().reduce(1, *))).squareRoot()
        return u.map { Float((2 * $0 - 1) * bound) }
    }

    static func input(_ tag: String, shape: [Int]) -> Tensor {
        Tensor(shape: shape, values: uniforms("input:" + tag, shape.reduce(1, *)).map { Float(2 * $0 - 1) })
    }

    /// Overwrites every parameter and buffer of `net` (readouts' fixed buffers included).
    static func fill(_ net: Network) {
        for p in net.parameters { p.value.copy(from: Tensor(shape: p.shape, values: values(p.name, shape: p.shape))) }
        for b in net.buffers { b.value.copy(from: Tensor(shape: b.value.shape, values: values(b.name, shape: b.value.shape))) }
    }
}
