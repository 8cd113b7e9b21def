/// The model of a recipe: units grouped into blocks, the local objectives at their taps,
/// and the classifier head.
///
/// Everything that distinguishes layer-local, block-local and end-to-end training is
/// decided here, from the config, as data the one trainer loop reads:
/// - `blocks`: which units backpropagate into each other (gradients never cross a block);
/// - `readouts`: the units carrying a local objective (each block's last unit, or every unit);
/// - `headBlock`: the block whose backward the classifier head joins (backprop baselines),
///   or nil when the head trains on detached features.
public final class Network {
    public let config: RecipeConfig
    public let inputShape: [Int]
    public let classes: Int
    public let units: [Unit]
    public let blocks: [Block]
    /// Indices of the units with a local objective, in order (a Tally's readouts).
    public let readouts: [Int]
    public let head: FeatureHead?
    public let headBlock: Int?
    /// BiCovG's Logistic Fusion of the readouts' scores (pred = goodness-logistic).
    public let fusion: LogisticFusion?
    /// The trainer's step, for layers with random training-mode forwards (dropout).
    public let clock = StepClock()

    public init(_ ctx: ComputeContext, config: RecipeConfig, inputShape: [Int], classes: Int) throws {
        try config.validate()
        self.config = config
        self.inputShape = inputShape
        self.classes = classes
        let units = try Architectures.units(ctx, config, inputShape: inputShape, clock: clock)
        self.units = units

        let groups = try BlockPartition.parse(config.blocks).groups(units)
        blocks = groups.enumerated().map { b, members in
            let last = units[members.last!]
            var boundary: [Layer] = []
            if config.blockNorm == "layernorm" {
                boundary.append(LayerNorm(ctx, name: "blocks.\(b).norm", featureShape: last.outputShape,
                                          eps: Float(config.lnEps), affine: false))
            }
            // BiCovG's Feature Alignment Layer on every block input but the image.
            let entry: [Layer] = config.fal && b > 0
                ? [FeatureAlignment.layer(ctx, name: "blocks.\(b).fal", channels: units[members[0]].inputShape[0],
                                          bias: config.falBias)]
                : []
            return Block(index: b, entry: Sequential(entry), units: members.map { units[$0] }, boundary: Sequential(boundary))
        }

        var readouts: [Int] = []
        if config.hasLocalLoss {
            let lastChannels = units.last!.tapShape[0]
            for block in blocks {
                let carriers = config.localLossAt == "every-unit" ? block.units : [block.units.last!]
                for u in carriers {
                    u.local = Network.objective(ctx, config, unit: u, lastChannels: lastChannels, classes: classes)
                    readouts.append(u.index)
                }
            }
        }
        self.readouts = readouts
        fusion = config.pred == "goodness-logistic"
            ? LogisticFusion(ctx, readouts: readouts.count, first: config.fusionInitFirst, last: config.fusionInitLast,
                             decay: config.fusionDecay)
            : nil

        let last = units.count - 1
        let point = FeatureHead.Point(rawValue: config.headInput) ?? .tap
        let headInit = Architectures.vggInitScheme(config)
        switch config.pred {
        case "fusion":
            guard last >= 1 else { throw FFError("pred = fusion needs at least two units (it reads units 2..L).") }
            head = FeatureHead(ctx, taps: Array(1...last), point: point, units: units, classes: classes,
                               batchNorm: config.fusionBatchNorm, perLayerSum: config.fusionHead == "per-layer-sum",
                               initScheme: headInit, seed: config.seed)
        case "last":
            head = FeatureHead(ctx, taps: [last], point: point, units: units, classes: classes,
                               batchNorm: config.fusionBatchNorm, initScheme: headInit, seed: config.seed)
        default:
            head = nil
        }
        if config.headBackprop, let head {
            let owners = Set(head.taps.map { t in groups.firstIndex { $0.contains(t) }! })
            guard owners.count == 1 else {
                throw FFError("head_backprop = true sends the classifier's gradient into the units it reads ("
                    + head.taps.map { units[$0].label }.joined(separator: ", ") + "), which blocks = \(config.blocks) "
                    + "spreads over \(owners.count) blocks. Use blocks = whole, pred = last, or head_backprop = false.")
            }
            headBlock = owners.first
        } else {
            headBlock = nil
        }
    }

    static func objective(_ ctx: ComputeContext, _ c: RecipeConfig, unit: Unit, lastChannels: Int,
                          classes: Int) -> LocalObjective {
        let name = unit.name + ".local"
        let tap = unit.tapShape
        switch c.localLoss {
        case "class-goodness":
            return ClassGoodness(ctx, name: name, mapShape: tap, classes: classes, kernel: c.auxKernel, bias: c.auxBias,
                                 seed: c.seed)
        case "covariance-goodness":
            let p = Ops.partition(alpha: c.alpha, lastChannels: lastChannels, channels: tap[0], height: tap[1], width: tap[2])
            return CovarianceGoodness(ctx, name: name, mapShape: tap, partition: p, bins: c.goodnessBins, covariance: c.cov,
                                      directions: c.covDirections, levels: c.covLevels, patchEnergies: c.covPatchEnergies,
                                      classes: classes, readoutStd: Float(c.readoutStdScale / Double(classes).squareRoot()),
                                      seed: c.seed)
        default:
            let p = Ops.partition(alpha: c.alpha, lastChannels: lastChannels, channels: tap[0], height: tap[1], width: tap[2])
            return SpatialGoodness(ctx, name: name, channels: tap[0], partition: p, bins: c.goodnessBins, classes: classes,
                                   readoutStd: Float(c.readoutStdScale / Double(classes).squareRoot()),
                                   learnTemperature: c.learnTemperature, temperatureInit: Float(c.temperatureInit),
                                   temperatureLrScale: c.temperatureLrScale,
                                   seed: c.seed)
        }
    }

    public var parameters: [Parameter] {
        blocks.flatMap(\.parameters) + (head?.parameters ?? []) + (fusion?.parameters ?? [])
    }

    /// Parameters of the predictor trained on detached inputs (its own optimizer): the
    /// detached head's, or the Logistic Fusion gates.
    public var detachedPredictorParameters: [Parameter] {
        (headBlock == nil ? head?.parameters ?? [] : []) + (fusion?.parameters ?? [])
    }
    public var buffers: [Buffer] { blocks.flatMap(\.buffers) + (head?.buffers ?? []) }

    /// Parameters one block's optimizer updates: its own, and the head's when attached to it.
    public func trainedParameters(_ block: Block) -> [Parameter] {
        block.parameters + (headBlock == block.index ? head?.parameters ?? [] : [])
    }

    /// Forward multiply-accumulates per sample through all conv layers (aux convs, entries).
    public var forwardMACs: Int { units.reduce(0) { $0 + $1.forwardMACs } + blocks.reduce(0) { $0 + $1.entryMACs } }

    /// Multiply-accumulates per sample of one training step: forward, weight gradient, and
    /// the input gradient everywhere except at the first layers of each block.
    public var trainMACs: Int { 3 * forwardMACs - blocks.reduce(0) { $0 + $1.inputMACs } }

    /// Local objectives in readout order.
    public var objectives: [LocalObjective] { readouts.map { units[$0].local! } }

    /// Partition factors P_l of the spatial-goodness (and covariance-goodness) readouts.
    public var partitions: [Int] {
        objectives.compactMap { ($0 as? SpatialGoodness)?.partition ?? ($0 as? CovarianceGoodness)?.partition }
    }

    /// How reports name readout r: the unit, or the block when blocks hold several units.
    public func readoutLabel(_ r: Int) -> String {
        let u = units[readouts[r]]
        let block = blocks.first { $0.units.contains { $0 === u } }!
        return block.units.count == 1 || config.localLossAt == "every-unit" ? u.label : "block \(block.index + 1) (\(u.label))"
    }

    public var readoutLabels: [String] { readouts.indices.map(readoutLabel) }

    /// Whether the recipe predicts with a classifier or from averaged readouts (not Best Pred).
    public var hasPredictor: Bool { head != nil || config.pred.hasPrefix("goodness-") }

    public func releaseCaches() {
        blocks.forEach { $0.releaseCache() }
        head?.releaseCache()
        fusion?.releaseCache()
    }

    /// A one-paragraph description for logs.
    public var summary: String {
        let blockText = blocks.map { b -> String in
            (b.hasEntry ? "fal " : "") + b.units.map { u -> String in
                let p = u.local.map { "·" + $0.shortDescription } ?? ""
                return "\(u.tapShape[0])\(p)" + (u.outputShape[1] < u.inputShape[1] ? "↓" : "")
            }.joined(separator: " ")
        }.joined(separator: " | ")
        let nParams = parameters.reduce(0) { $0 + $1.value.count }
        let headText: String
        if let h = head {
            headText = "head on \(h.point) of \(h.taps.count == 1 ? units[h.taps[0]].label : "units \(h.taps.map { $0 + 1 })")"
                + " (\(h.featureSize) features\(headBlock != nil ? ", backprop into the network" : ", detached"))"
        } else {
            headText = config.pred == "best" ? "no classifier (Best Pred)" : "prediction: \(config.pred) of the readouts"
        }
        return "\(config.arch) [\(blockText)] (\(blocks.count) blocks) input \(inputShape), \(classes) classes, "
            + "\(nParams) trainable parameters, \(headText)"
    }
}
