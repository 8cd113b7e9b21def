/// A trainable tensor and its gradient. `name` is the stable key used in checkpoints
/// and optimizer state (e.g. "units.2.conv.weight").
public final class Parameter {
    public let name: String
    public let value: Tensor
    public let grad: Tensor
    /// Whether weight decay applies (PyTorch's default optimizers decay every parameter).
    public var decay: Bool
    /// Multiplies the optimizer's learning rate for this parameter (a parameter group with
    /// its own rate, e.g. DTG-FF's temperature); 1 for every other parameter.
    public var lrScale: Double = 1

    public init(name: String, value: Tensor, decay: Bool = true) {
        self.name = name
        self.value = value
        self.grad = Tensor(zeros: value.shape)
        self.decay = decay
    }

    public var shape: [Int] { value.shape }
}

/// A named tensor that is saved but not trained (running statistics, fixed readouts).
public struct Buffer {
    public let name: String
    public let value: Tensor
    public init(name: String, value: Tensor) { self.name = name; self.value = value }
}

public enum ForwardMode: Equatable {
    /// Running statistics, nothing cached.
    case eval
    /// Batch statistics; `cache` keeps what `backward` needs.
    case train(cache: Bool)

    public var isTraining: Bool { self != .eval }
    public var caches: Bool { self == .train(cache: true) }
}

/// One differentiable operation. `forward` with `.train(cache: true)` records what
/// `backward` needs; `backward` adds parameter gradients into `Parameter.grad` and returns
/// the input gradient only when asked (layer-local training never asks at a layer
/// boundary, which is where it saves its compute).
public protocol Layer: AnyObject {
    var parameters: [Parameter] { get }
    var buffers: [Buffer] { get }
    func outputShape(_ input: [Int]) -> [Int]
    func forward(_ x: Tensor, _ mode: ForwardMode) -> Tensor
    func backward(_ dy: Tensor, inputGrad: Bool) -> Tensor?
    /// Drops cached activations so only the current layer's memory stays alive.
    func releaseCache()
    /// Multiply-accumulates of the forward pass for an input of shape `input` (with the
    /// batch dimension), counting conv and linear layers (the benchmark's GFLOP/s).
    func forwardMACs(_ input: [Int]) -> Int
    /// The part of `forwardMACs` in conv/linear layers that read this layer's input
    /// directly: their input gradient is never computed when the layer starts a block.
    func inputMACs(_ input: [Int]) -> Int
    /// Whether the layer keeps its output tensor for its backward; a later layer must then
    /// not overwrite that tensor in place.
    var keepsOutput: Bool { get }
}

extension Layer {
    public var parameters: [Parameter] { [] }
    public var buffers: [Buffer] { [] }
    public func forwardMACs(_ input: [Int]) -> Int { 0 }
    public func inputMACs(_ input: [Int]) -> Int { 0 }
    public var keepsOutput: Bool { false }
}

/// Deterministic initialisation streams: each parameter draws from its own stream keyed
/// by its name, so adding a layer elsewhere never changes another layer's initial weights.
public enum Init {
    public static func stream(for name: String) -> UInt64 { SeededRandom.fnv1a(name) }

    /// PyTorch's default for Conv/Linear weights and biases: U(-1/sqrt(fanIn), 1/sqrt(fanIn)).
    public static func fanInUniform(_ t: Tensor, fanIn: Int, seed: UInt64, name: String) {
        var rng = RNG(seed: seed, stream: stream(for: name))
        let bound = 1 / Float(Double(fanIn).squareRoot())
        rng.fillUniform(t, low: -bound, high: bound)
    }

    /// A layer's weight (and bias) parameters with PyTorch's fan-in initialisation.
    public static func weightAndBias(name: String, shape: [Int], fanIn: Int, bias: Bool,
                                     seed: UInt64) -> (Parameter, Parameter?) {
        let w = Tensor(uninitialized: shape)
        fanInUniform(w, fanIn: fanIn, seed: seed, name: name + ".weight")
        var b: Parameter?
        if bias {
            let t = Tensor(uninitialized: [shape[0]])
            fanInUniform(t, fanIn: fanIn, seed: seed, name: name + ".bias")
            b = Parameter(name: name + ".bias", value: t)
        }
        return (Parameter(name: name + ".weight", value: w), b)
    }

    /// How a conv/linear weight is drawn.
    public enum Scheme {
        /// PyTorch's layer default: U(-1/sqrt(fanIn), 1/sqrt(fanIn)) for weight and bias.
        case fanInUniform
        /// torchvision's ResNet/MobileNetV3 convs: kaiming_normal_(mode="fan_out", ReLU gain),
        /// std = sqrt(2 / fanOut) with fanOut = out_channels * kh * kw; bias 0.
        case kaimingFanOut
        /// kaiming_normal_(mode="fan_in", ReLU gain): std = sqrt(2 / fanIn); bias 0 (the ASGE
        /// authors' convs and classifier).
        case kaimingFanIn
    }

    /// A layer's weight (and bias) under `scheme`.
    public static func weightAndBias(name: String, shape: [Int], fanIn: Int, bias: Bool, scheme: Scheme,
                                     seed: UInt64) -> (Parameter, Parameter?) {
        switch scheme {
        case .fanInUniform:
            return weightAndBias(name: name, shape: shape, fanIn: fanIn, bias: bias, seed: seed)
        case .kaimingFanOut, .kaimingFanIn:
            let w = Tensor(uninitialized: shape)
            let fan = scheme == .kaimingFanIn ? fanIn : shape[0] * shape.dropFirst(2).reduce(1, *)
            normal(w, std: Float((2 / Double(fan)).squareRoot()), seed: seed, name: name + ".weight")
            let b = bias ? Parameter(name: name + ".bias", value: Tensor(zeros: [shape[0]])) : nil
            return (Parameter(name: name + ".weight", value: w), b)
        }
    }

    public static func normal(_ t: Tensor, std: Float, seed: UInt64, name: String) {
        var rng = RNG(seed: seed, stream: stream(for: name))
        rng.fillNormal(t, std: std)
    }
}
