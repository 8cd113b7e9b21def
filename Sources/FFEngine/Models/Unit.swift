/// The atomic piece of a network: a VGG conv layer, a ResNet basic block, a MobileNetV3
/// inverted residual, a stem.
///   x -> body (a small layer graph) -> Y  ["tap": local objectives and classifier
///   features read here] -> post (pooling, and LayerNorm in the layer-local VGG layout)
/// Blocks group consecutive units; units never decide where gradients stop.
public final class Unit {
    public let index: Int
    /// Key of the unit's local objective and observer events ("units.3", "layer2.0").
    public let name: String
    /// How messages and reports name it ("layer 4", "layer2.0").
    public let label: String
    public let body: Sequential
    public let post: Sequential
    /// Downsampling stage (units between resolution changes share one), for blocks = per-stage.
    public let stage: Int
    /// A stem joins the block after it under per-residual-unit and per-stage blocks.
    public let isStem: Bool
    /// The local objective at this unit's tap, set by the network from the block layout.
    public internal(set) var local: LocalObjective?
    /// Per-sample shapes [C, H, W].
    public let inputShape: [Int]
    public let tapShape: [Int]
    public let outputShape: [Int]

    init(index: Int, name: String, label: String, body: Sequential, post: Sequential = Sequential([]),
         stage: Int, isStem: Bool = false, inputShape: [Int]) {
        self.index = index
        self.name = name
        self.label = label
        self.body = body
        self.post = post
        self.stage = stage
        self.isStem = isStem
        self.inputShape = inputShape
        tapShape = Array(body.outputShape([1] + inputShape).dropFirst())
        outputShape = Array(post.outputShape([1] + tapShape).dropFirst())
    }

    public var parameters: [Parameter] { body.parameters + (local?.parameters ?? []) + post.parameters }
    public var buffers: [Buffer] { body.buffers + (local?.buffers ?? []) + post.buffers }

    /// Forward multiply-accumulates per sample (conv and linear layers, local objective included).
    public var forwardMACs: Int {
        body.forwardMACs([1] + inputShape) + post.forwardMACs([1] + tapShape) + (local?.forwardMACs ?? 0)
    }

    /// The MACs of the layers reading the unit's input directly (no input gradient when
    /// the unit starts a block).
    public var inputMACs: Int { body.inputMACs([1] + inputShape) }

    public func releaseCache() {
        body.releaseCache()
        local?.releaseCache()
        post.releaseCache()
    }
}

/// The engine's unit of locality: consecutive units trained by backprop inside, from a
/// detached input, by the local objectives at their taps (and the classifier head when it
/// is attached to this block). `boundary` (SFF's LayerNorm) maps the last unit's output to
/// what the next block receives; it is computed without gradient. `entry` (BiCovG's
/// Feature Alignment Layer; empty elsewhere) maps the detached input before the first
/// unit and trains with the block: the first unit then computes its input gradient, and
/// the entry's backward stops there (no input gradient).
public final class Block {
    public let index: Int
    public let entry: Sequential
    public let units: [Unit]
    public let boundary: Sequential
    /// Per-sample shape of what the block passes on.
    public let outputShape: [Int]

    init(index: Int, entry: Sequential = Sequential([]), units: [Unit], boundary: Sequential) {
        self.index = index
        self.entry = entry
        self.units = units
        self.boundary = boundary
        outputShape = Array(boundary.outputShape([1] + units.last!.outputShape).dropFirst())
    }

    public var hasEntry: Bool { !entry.layers.isEmpty }
    public var parameters: [Parameter] { entry.parameters + units.flatMap(\.parameters) + boundary.parameters }
    public var buffers: [Buffer] { entry.buffers + units.flatMap(\.buffers) + boundary.buffers }

    /// Forward multiply-accumulates per sample of the entry.
    public var entryMACs: Int { entry.forwardMACs([1] + units[0].inputShape) }
    /// The MACs whose input gradient is never computed: of the layers reading the block's input.
    public var inputMACs: Int { hasEntry ? entry.inputMACs([1] + units[0].inputShape) : units[0].inputMACs }
    public var label: String {
        units.count == 1 ? units[0].label : "\(units.first!.label)...\(units.last!.label)"
    }

    public func releaseCache() {
        entry.releaseCache()
        units.forEach { $0.releaseCache() }
        boundary.releaseCache()
    }
}
