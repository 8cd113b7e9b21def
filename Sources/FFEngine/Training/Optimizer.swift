import FFCore
import Foundation

/// Optimizer state lives per parameter (keyed by parameter name) so it can be saved in a
/// checkpoint and restored bit-exactly. Each layer-local unit owns its own optimizer.
public protocol Optimizer: AnyObject {
    /// Applies one update with the gradients in `Parameter.grad` at learning rate `lr`.
    func step(_ params: [Parameter], lr: Double)
    /// Number of steps taken so far.
    var steps: Int { get set }
    /// State tensors by name ("<param>.m", ...), for checkpoints.
    func stateTensors(_ params: [Parameter]) -> [Buffer]
}

public final class AdamW: Optimizer {
    let ctx: ComputeContext
    public let beta1: Float, beta2: Float, eps: Float, weightDecay: Float
    public var steps = 0
    private var m: [String: Tensor] = [:]
    private var v: [String: Tensor] = [:]

    public init(_ ctx: ComputeContext, beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8, weightDecay: Double) {
        self.ctx = ctx
        self.beta1 = Float(beta1)
        self.beta2 = Float(beta2)
        self.eps = Float(eps)
        self.weightDecay = Float(weightDecay)
    }

    private func state(_ p: Parameter) -> (Tensor, Tensor) {
        if let a = m[p.name], let b = v[p.name] { return (a, b) }
        let a = Tensor(zeros: p.shape), b = Tensor(zeros: p.shape)
        m[p.name] = a
        v[p.name] = b
        return (a, b)
    }

    public func step(_ params: [Parameter], lr: Double) {
        steps += 1
        for p in params {
            let (mt, vt) = state(p)
            ff_adamw_step(ctx.raw, p.value.count, p.value.pointer, p.grad.pointer, mt.pointer, vt.pointer, Float(lr * p.lrScale),
                          beta1, beta2, eps, p.decay ? weightDecay : 0, steps)
        }
    }

    public func stateTensors(_ params: [Parameter]) -> [Buffer] {
        params.flatMap { p -> [Buffer] in
            let (a, b) = state(p)
            return [Buffer(name: p.name + ".exp_avg", value: a), Buffer(name: p.name + ".exp_avg_sq", value: b)]
        }
    }
}

public final class SGD: Optimizer {
    let ctx: ComputeContext
    public let momentum: Float, weightDecay: Float, nesterov: Bool
    public var steps = 0
    private var buf: [String: Tensor] = [:]

    public init(_ ctx: ComputeContext, momentum: Double, weightDecay: Double, nesterov: Bool) {
        self.ctx = ctx
        self.momentum = Float(momentum)
        self.weightDecay = Float(weightDecay)
        self.nesterov = nesterov
    }

    private func state(_ p: Parameter) -> Tensor {
        if let b = buf[p.name] { return b }
        let b = Tensor(zeros: p.shape)
        buf[p.name] = b
        return b
    }

    public func step(_ params: [Parameter], lr: Double) {
        let first = steps == 0
        steps += 1
        for p in params {
            ff_sgd_step(ctx.raw, p.value.count, p.value.pointer, p.grad.pointer, state(p).pointer, Float(lr * p.lrScale), momentum, 0,
                        p.decay ? weightDecay : 0, nesterov ? 1 : 0, first ? 1 : 0)
        }
    }

    public func stateTensors(_ params: [Parameter]) -> [Buffer] {
        momentum == 0 ? [] : params.map { Buffer(name: $0.name + ".momentum_buffer", value: state($0)) }
    }
}

public enum OptimizerFactory {
    public static func make(_ ctx: ComputeContext, _ c: RecipeConfig) -> Optimizer {
        switch c.optimizer {
        case "sgd": return SGD(ctx, momentum: c.momentum, weightDecay: c.weightDecay, nesterov: c.nesterov)
        default: return AdamW(ctx, beta1: c.beta1, beta2: c.beta2, eps: c.adamEps, weightDecay: c.weightDecay)
        }
    }

    /// Learning rate of `epoch` (0-based): cosine annealing from lr to min_lr over the
    /// epochs, stepped once per epoch like PyTorch's CosineAnnealingLR(T_max = epochs),
    /// after an optional linear warm-up. [choice: per-epoch steps]
    public static func learningRate(_ c: RecipeConfig, epoch: Int) -> Double {
        ff_cosine_lr(c.lr, c.minLr, epoch, c.epochs, c.warmupEpochs)
    }
}
