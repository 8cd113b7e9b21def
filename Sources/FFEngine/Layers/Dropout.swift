import FFCore

/// Which optimizer step the trainer is on, and the position in the step's global batch of
/// the first sample of the current micro-batch. Layers whose training-mode forward is
/// random (dropout) key each sample's draws by (step, position): a resumed run draws what
/// the uninterrupted run drew, and gradient accumulation, data parallelism and pipelines
/// draw what one process does.
public final class StepClock {
    public var step = 0
    public var firstSample = 0
    public init() {}
}

/// Inverted dropout (training only): each value is zeroed with probability p and the
/// survivors scaled by 1 / (1 - p); evaluation is the identity. Each sample's mask is a
/// pure function of (seed, layer name, step, the sample's position in the global batch).
public final class Dropout: Layer {
    public let ctx: ComputeContext
    public let p: Float
    public let name: String
    let seed: UInt64
    let clock: StepClock
    private var uniforms: Tensor?

    public init(_ ctx: ComputeContext, name: String, p: Float, seed: UInt64, clock: StepClock) {
        precondition(p >= 0 && p < 1, "dropout probability \(p) outside [0, 1)")
        self.ctx = ctx
        self.name = name
        self.p = p
        self.seed = seed
        self.clock = clock
    }

    public func outputShape(_ input: [Int]) -> [Int] { input }

    public func forward(_ x: Tensor, _ mode: ForwardMode) -> Tensor {
        guard mode.isTraining, p > 0 else { return x }
        let u = Tensor(uninitialized: x.shape)
        let n = x.shape[0], d = x.count / max(n, 1)
        for i in 0..<n {
            var key = SeededRandom(seed: seed, stream: "dropout." + name, UInt64(clock.step), UInt64(clock.firstSample + i))
            var rng = RNG(seed: key.next())
            ff_rng_fill_uniform(&rng.state, d, u.pointer + i * d, 0, 1)
        }
        let y = Tensor(uninitialized: x.shape)
        ff_dropout_apply(x.count, p, u.pointer, x.pointer, y.pointer)
        if mode.caches { uniforms = u }
        return y
    }

    public func backward(_ dy: Tensor, inputGrad: Bool) -> Tensor? {
        guard inputGrad else { return nil }
        guard p > 0 else { return dy }
        guard let u = uniforms else { preconditionFailure("Dropout \(name): backward without a cached forward") }
        let dx = Tensor(uninitialized: dy.shape)
        ff_dropout_apply(dy.count, p, u.pointer, dy.pointer, dx.pointer)
        return dx
    }

    public func releaseCache() { uniforms = nil }
}
