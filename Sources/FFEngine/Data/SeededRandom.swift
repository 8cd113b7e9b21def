/// A small, fully specified random generator (SplitMix64) for everything that must be
/// reproducible across runs, machines and Swift versions: hold-out splits, epoch order,
/// subsets and augmentation draws. Swift's own shuffles are not specified to be stable.
/// Tensors (weights, readouts) come from FFCore's xoshiro256** (`RNG`); this one exists
/// because a data stream is keyed by coordinates (epoch, sample) and must be cheap to
/// create per sample.
public struct SeededRandom: RandomNumberGenerator {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    /// A generator for one purpose (`stream`) and coordinates (epoch, sample, ...) derived
    /// from a base seed; different streams or coordinates give unrelated sequences.
    public init(seed: UInt64, stream: String, _ coordinates: UInt64...) {
        var h = SeededRandom.mix(seed ^ SeededRandom.fnv1a(stream))
        for c in coordinates { h = SeededRandom.mix(h ^ SeededRandom.mix(c &+ 0x632B_E59B_D9B4_E019)) }
        state = h
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return SeededRandom.mix(state)
    }

    /// Uniform integer in [0, bound) without modulo bias (Lemire's method).
    public mutating func below(_ bound: Int) -> Int {
        precondition(bound > 0, "empty range")
        let b = UInt64(bound)
        var m = next().multipliedFullWidth(by: b)
        if m.low < b {
            let threshold = (0 &- b) % b
            while m.low < threshold { m = next().multipliedFullWidth(by: b) }
        }
        return Int(m.high)
    }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func unit() -> Double { Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0) }

    /// A uniformly random permutation of 0..<n (Fisher-Yates).
    public mutating func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<n)
        if n > 1 {
            for i in stride(from: n - 1, to: 0, by: -1) { p.swapAt(i, below(i + 1)) }
        }
        return p
    }

    static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    static func fnv1a(_ s: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return h
    }
}
