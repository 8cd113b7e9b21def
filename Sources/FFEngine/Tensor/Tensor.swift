import Foundation
import FFCore

/// Owned, 64-byte aligned float32 memory. Every allocation is counted by `MemoryMeter`
/// so benchmarks can report the engine's own high-water mark next to peak RSS.
public final class TensorStorage {
    public let base: UnsafeMutablePointer<Float>
    public let count: Int

    public init(count: Int, zeroed: Bool = true) {
        precondition(count >= 0, "negative tensor size")
        let bytes = max(64, (count * MemoryLayout<Float>.stride + 63) & ~63)
        guard let raw = ff_buffer_alloc(bytes, zeroed ? 1 : 0) else {
            // Not recoverable inside a kernel call chain: say why and stop cleanly.
            FileHandle.standardError.write(Data(("error: out of memory: a tensor of \(bytes >> 20) MiB could not be "
                + "allocated (\(MemoryMeter.shared.currentBytes >> 20) MiB of tensors are live). Use a smaller "
                + "--batch-size, or --accumulate K to split each batch.\n").utf8))
            exit(3)
        }
        base = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        self.count = count
        MemoryMeter.shared.allocated(bytes)
    }

    deinit {
        let bytes = max(64, (count * MemoryLayout<Float>.stride + 63) & ~63)
        MemoryMeter.shared.freed(bytes)
        ff_buffer_free(base, bytes)
    }
}

/// A dense float32 tensor: a shape over contiguous storage, possibly a view into a larger
/// storage (`offset`). Tensors have reference semantics like PyTorch's: views share
/// memory, and writing through one is visible through all. Copies happen only when asked
/// (`copy()`), never implicitly.
public struct Tensor: CustomStringConvertible {
    public let shape: [Int]
    public let storage: TensorStorage
    public let offset: Int

    public var count: Int { shape.reduce(1, *) }
    public var rank: Int { shape.count }

    /// A new tensor filled with zeros.
    public init(zeros shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "invalid shape \(shape)")
        self.shape = shape
        self.storage = TensorStorage(count: shape.reduce(1, *))
        self.offset = 0
    }

    /// A new tensor whose contents are undefined (for outputs that a kernel overwrites).
    public init(uninitialized shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "invalid shape \(shape)")
        self.shape = shape
        self.storage = TensorStorage(count: shape.reduce(1, *), zeroed: false)
        self.offset = 0
    }

    public init(shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count,
                     "shape \(shape) needs \(shape.reduce(1, *)) values, got \(values.count)")
        self.init(uninitialized: shape)
        values.withUnsafeBufferPointer { src in
            if let b = src.baseAddress { pointer.update(from: b, count: values.count) }
        }
    }

    public init(filled value: Float, shape: [Int]) {
        self.init(uninitialized: shape)
        pointer.update(repeating: value, count: count)
    }

    init(shape: [Int], storage: TensorStorage, offset: Int) {
        precondition(offset >= 0 && offset + shape.reduce(1, *) <= storage.count,
                     "view \(shape) at \(offset) exceeds storage of \(storage.count)")
        self.shape = shape
        self.storage = storage
        self.offset = offset
    }

    /// Mutable pointer to the first element (reference semantics: shared by views).
    public var pointer: UnsafeMutablePointer<Float> { storage.base + offset }

    public var buffer: UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: pointer, count: count)
    }

    /// Same memory, another shape with the same element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var s = newShape
        if let i = s.firstIndex(of: -1) {
            let known = s.enumerated().filter { $0.offset != i }.map(\.element).reduce(1, *)
            precondition(known > 0 && count % known == 0, "cannot infer -1 in \(newShape) for \(shape)")
            s[i] = count / known
        }
        precondition(s.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        return Tensor(shape: s, storage: storage, offset: offset)
    }

    /// Rows [start, start+length) along the first axis, sharing memory.
    public func slice(_ start: Int, _ length: Int) -> Tensor {
        precondition(rank >= 1 && start >= 0 && length >= 0 && start + length <= shape[0],
                     "slice \(start)..<\(start + length) out of \(shape)")
        let inner = shape.dropFirst().reduce(1, *)
        return Tensor(shape: [length] + shape.dropFirst(), storage: storage, offset: offset + start * inner)
    }

    /// A fresh tensor with the same values.
    public func copy() -> Tensor {
        let t = Tensor(uninitialized: shape)
        t.pointer.update(from: pointer, count: count)
        return t
    }

    public func fill(_ value: Float) {
        pointer.update(repeating: value, count: count)
    }

    public func copy(from other: Tensor) {
        precondition(other.count == count, "copy: \(other.shape) into \(shape)")
        pointer.update(from: other.pointer, count: count)
    }

    public var array: [Float] { Array(buffer) }

    public subscript(_ i: Int) -> Float {
        get { pointer[i] }
        nonmutating set { pointer[i] = newValue }
    }

    public var description: String {
        let head = buffer.prefix(6).map { String(format: "%.4g", $0) }.joined(separator: ", ")
        return "Tensor\(shape)[\(head)\(count > 6 ? ", ..." : "")]"
    }
}
