import FFCore

/// Seeded, machine-independent random numbers (xoshiro256** in FFCore). The state is
/// four UInt64 words; checkpoints store them so a resumed run continues the same stream.
public struct RNG {
    public var state: ff_rng

    public init(seed: UInt64) {
        state = ff_rng()
        ff_rng_seed(&state, seed)
    }

    /// An independent stream for (seed, stream), e.g. one per epoch or per layer.
    public init(seed: UInt64, stream: UInt64) {
        state = ff_rng()
        ff_rng_seed_stream(&state, seed, stream)
    }

    public init(words: [UInt64]) {
        precondition(words.count == 4, "RNG state needs 4 words")
        state = ff_rng(s: (words[0], words[1], words[2], words[3]))
    }

    public var words: [UInt64] { [state.s.0, state.s.1, state.s.2, state.s.3] }

    public mutating func next() -> UInt64 { ff_rng_next(&state) }
    public mutating func uniform() -> Float { ff_rng_uniform(&state) }
    public mutating func below(_ bound: Int) -> Int { Int(ff_rng_below(&state, UInt32(bound))) }

    public mutating func fillUniform(_ t: Tensor, low: Float, high: Float) {
        ff_rng_fill_uniform(&state, t.count, t.pointer, low, high)
    }

    public mutating func fillNormal(_ t: Tensor, mean: Float = 0, std: Float) {
        ff_rng_fill_normal(&state, t.count, t.pointer, mean, std)
    }

    public mutating func permutation(_ n: Int) -> [Int32] {
        var out = [Int32](repeating: 0, count: n)
        out.withUnsafeMutableBufferPointer { ff_rng_permutation(&state, n, $0.baseAddress) }
        return out
    }
}
