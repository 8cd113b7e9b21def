/// A residual unit: out = act(main(x) + shortcut(x)), with an identity shortcut when
/// `shortcut` is nil (ResNet's basic block, MobileNetV3's inverted residual without the
/// activation). Backward sends the same gradient into both branches and sums their input
/// gradients.
public final class Residual: Layer {
    public let ctx: ComputeContext
    public let main: Sequential
    public let shortcut: Sequential?
    public let activation: Activation?

    public init(_ ctx: ComputeContext, main: Sequential, shortcut: Sequential?, activation: Ops.Activation?) {
        // Layer.backward may consume its dy (Conv2d with a fused ReLU masks it in place); the
        // branches share one gradient, so neither may end in such a layer.
        for branch in [main, shortcut].compactMap({ $0 }) {
            if let conv = branch.layers.last as? Conv2d {
                precondition(!conv.fusedReLU, "a residual branch must not end in a conv with a fused ReLU")
            }
        }
        self.ctx = ctx
        self.main = main
        self.shortcut = shortcut
        self.activation = activation.map { Activation(ctx, $0, inPlace: $0 == .relu) }
    }

    public var parameters: [Parameter] { main.parameters + (shortcut?.parameters ?? []) }
    public var buffers: [Buffer] { main.buffers + (shortcut?.buffers ?? []) }

    public func outputShape(_ input: [Int]) -> [Int] { main.outputShape(input) }

    public func forwardMACs(_ input: [Int]) -> Int {
        main.forwardMACs(input) + (shortcut?.forwardMACs(input) ?? 0)
    }

    public func inputMACs(_ input: [Int]) -> Int {
        main.inputMACs(input) + (shortcut?.inputMACs(input) ?? 0)
    }

    public func forward(_ x: Tensor, _ mode: ForwardMode) -> Tensor {
        let m = main.forward(x, mode)
        let s = shortcut?.forward(x, mode) ?? x
        precondition(m.shape == s.shape, "residual branches disagree: \(m.shape) vs \(s.shape)")
        // The sum goes into main's output unless that layer keeps it for its backward.
        let z = main.keepsOutput ? m.copy() : m
        Ops.axpy(ctx, 1, s, z)
        return activation?.forward(z, mode) ?? z
    }

    public var keepsOutput: Bool { activation?.keepsOutput ?? false }

    public func backward(_ dy: Tensor, inputGrad: Bool) -> Tensor? {
        let dz = activation.map { $0.backward(dy, inputGrad: true)! } ?? dy
        let dShortcut = shortcut?.backward(dz, inputGrad: inputGrad)
        let dx = main.backward(dz, inputGrad: inputGrad)
        guard inputGrad, let dx else { return nil }
        Ops.axpy(ctx, 1, dShortcut ?? dz, dx)
        return dx
    }

    public func releaseCache() {
        main.releaseCache()
        shortcut?.releaseCache()
        activation?.releaseCache()
    }
}
