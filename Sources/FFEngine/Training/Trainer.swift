import Foundation

/// Running sums of one epoch (or one evaluation pass).
public struct Tally {
    public var count = 0
    public var unitLoss: [Double]
    public var unitCorrect: [Int]
    public var unitTop5: [Int]
    public var headLoss = 0.0
    public var headCorrect = 0
    public var headTop5 = 0

    public init(units: Int) {
        unitLoss = Array(repeating: 0, count: units)
        unitCorrect = Array(repeating: 0, count: units)
        unitTop5 = Array(repeating: 0, count: units)
    }

    public var unitAccuracy: [Double] { unitCorrect.map { count > 0 ? Double($0) / Double(count) : 0 } }
    public var unitTop5Accuracy: [Double] { unitTop5.map { count > 0 ? Double($0) / Double(count) : 0 } }
    public var unitMeanLoss: [Double] { unitLoss.map { count > 0 ? $0 / Double(count) : 0 } }
    public var headAccuracy: Double { count > 0 ? Double(headCorrect) / Double(count) : 0 }
    public var headTop5Accuracy: Double { count > 0 ? Double(headTop5) / Double(count) : 0 }
    /// 1-based layer whose readout is most accurate (first on ties), nil without layers.
    public var bestLayer: Int? {
        let acc = unitAccuracy
        return acc.indices.max(by: { acc[$0] < acc[$1] }).map { $0 + 1 }
    }
    public var headMeanLoss: Double { count > 0 ? headLoss / Double(count) : 0 }
}

/// A loss (or a parameter after its update) became NaN or infinite: training stops,
/// naming where.
public struct NonFiniteLoss: Error, CustomStringConvertible {
    public let what: String
    public let step: Int
    /// The last good checkpoint of the run, when one was written before the failure.
    public var lastGood: String?

    public init(what: String, step: Int, lastGood: String? = nil) {
        self.what = what
        self.step = step
        self.lastGood = lastGood
    }

    public var description: String {
        let kept = lastGood.map { "the last good checkpoint, \($0), is kept (nothing was written after it)" }
            ?? "no checkpoint had been written yet"
        return "the loss or the weights of \(what) became NaN or infinite at step \(step). Training stopped; \(kept). "
            + "Try a smaller learning rate (--lr) or check the input data."
    }
}

/// Executes training steps and evaluation passes for a `Network`:
/// - layer-local (ASGE, DTG-FF): each unit's input is detached; its local loss updates
///   only its own weights (no input gradient is ever computed); the classifier head
///   trains on detached features. Only the current unit's activations are alive.
/// - backprop / deep-sup: one end-to-end backward pass through every unit.
public final class Trainer {
    public let ctx: ComputeContext
    public let net: Network
    public let config: RecipeConfig
    /// One optimizer per unit (layer-local) or a single one (backprop), plus the head's.
    public let unitOptimizers: [Optimizer]
    public let headOptimizer: Optimizer?
    public let globalOptimizer: Optimizer?
    public private(set) var step = 0
    /// Called during training with ("units.<i>", logits, loss) for every local readout and
    /// ("head", logits, loss) for the classifier, before the update (golden tests, debugging).
    public var observer: ((String, Tensor, Double) -> Void)?

    public init(_ ctx: ComputeContext, net: Network) {
        self.ctx = ctx
        self.net = net
        config = net.config
        if config.training == "layer-local" {
            unitOptimizers = net.units.map { _ in OptimizerFactory.make(ctx, net.config) }
            headOptimizer = net.head.map { _ in OptimizerFactory.make(ctx, net.config) }
            globalOptimizer = nil
        } else {
            unitOptimizers = []
            headOptimizer = nil
            globalOptimizer = OptimizerFactory.make(ctx, net.config)
        }
    }

    /// Named optimizer state for checkpoints ("units.3.conv.weight.exp_avg", ...).
    public var optimizerState: [Buffer] {
        var out: [Buffer] = []
        for (u, opt) in zip(net.units, unitOptimizers) { out += opt.stateTensors(u.parameters) }
        if let h = net.head, let opt = headOptimizer { out += opt.stateTensors(h.parameters) }
        if let opt = globalOptimizer { out += opt.stateTensors(net.parameters) }
        return out
    }

    public var optimizerSteps: [Int] {
        get { (unitOptimizers + [headOptimizer, globalOptimizer].compactMap { $0 }).map(\.steps) }
        set {
            let all = unitOptimizers + [headOptimizer, globalOptimizer].compactMap { $0 }
            precondition(newValue.count == all.count, "optimizer step counters: \(newValue.count) for \(all.count)")
            for (o, s) in zip(all, newValue) { o.steps = s }
        }
    }

    public func restore(step: Int) { self.step = step }

    // MARK: Training

    /// One optimizer step on `batch` at learning rate `lr`; sums statistics into `tally`.
    public func trainStep(_ batch: Batch, lr: Double, tally: inout Tally) throws {
        step += 1
        for p in net.parameters { Ops.zero(ctx, p.grad) }
        let k = config.accumulate
        let micro = (batch.count + k - 1) / k
        let scale = 1 / Float(batch.count)
        var start = 0
        while start < batch.count {
            let len = min(micro, batch.count - start)
            let mb = Batch(images: batch.images.slice(start, len), labels: Array(batch.labels[start..<start + len]))
            if config.training == "layer-local" {
                try localPass(mb, gradScale: scale, tally: &tally)
            } else {
                try backpropPass(mb, gradScale: scale, tally: &tally)
            }
            start += len
        }
        tally.count += batch.count
        if let opt = globalOptimizer {
            opt.step(net.parameters, lr: lr)
        } else {
            for (u, opt) in zip(net.units, unitOptimizers) { opt.step(u.parameters, lr: lr) }
            if let h = net.head, let opt = headOptimizer { opt.step(h.parameters, lr: lr) }
        }
        // A NaN can hide from the loss (ReLU maps it to 0) yet poison the weights.
        for unit in net.units {
            for p in unit.parameters where Ops.firstNonFinite(ctx, p.value) != nil {
                throw NonFiniteLoss(what: "layer \(unit.index + 1) (parameter \(p.name))", step: step)
            }
        }
        if let h = net.head, h.parameters.contains(where: { Ops.firstNonFinite(ctx, $0.value) != nil }) {
            throw NonFiniteLoss(what: "the classifier head (its parameters)", step: step)
        }
    }

    /// The CE of `unit`'s readout on its map `y` (counted in `tally`, stopped if not
    /// finite) and dL/dlogits scaled by `gradScale`.
    private func localLoss(_ unit: ConvUnit, _ y: Tensor, _ batch: Batch, gradScale: Float,
                           tally: inout Tally) throws -> Tensor {
        let logits = unit.local!.forward(y, cache: true)
        let dlogits = Tensor(uninitialized: logits.shape)
        let r = Ops.softmaxCrossEntropy(ctx, logits: logits, labels: batch.labels, dlogits: dlogits, gradScale: gradScale)
        if !r.loss.isFinite { throw NonFiniteLoss(what: "layer \(unit.index + 1)", step: step) }
        observer?("units.\(unit.index)", logits, r.loss)
        tally.unitLoss[unit.index] += r.loss * Double(batch.count)
        tally.unitCorrect[unit.index] += r.correct
        return dlogits
    }

    /// The classifier head's CE, like `localLoss`.
    private func headLoss(_ logits: Tensor, _ batch: Batch, gradScale: Float, tally: inout Tally) throws -> Tensor {
        let dlogits = Tensor(uninitialized: logits.shape)
        let r = Ops.softmaxCrossEntropy(ctx, logits: logits, labels: batch.labels, dlogits: dlogits, gradScale: gradScale)
        if !r.loss.isFinite { throw NonFiniteLoss(what: "the classifier head", step: step) }
        observer?("head", logits, r.loss)
        tally.headLoss += r.loss * Double(batch.count)
        tally.headCorrect += r.correct
        return dlogits
    }

    /// Layer-local forward/backward of one micro-batch: gradients accumulate into the
    /// parameters; nothing flows between units.
    private func localPass(_ batch: Batch, gradScale: Float, tally: inout Tally) throws {
        var x = batch.images
        var features = HeadFeatures(net: net, batch: batch.count)
        for unit in net.units {
            let y = unit.pre.forward(x, .train(cache: true))
            features.collect(ctx, unit: unit.index, point: .tap, y)
            let local = unit.local!
            let dlogits = try localLoss(unit, y, batch, gradScale: gradScale, tally: &tally)
            let dy = local.backward(dlogits)
            _ = unit.pre.backward(dy, inputGrad: false)
            let out = unit.post.forward(y, .train(cache: false))
            features.collect(ctx, unit: unit.index, point: .output, out)
            unit.releaseCache()
            x = out
        }
        if let head = net.head {
            let logits = head.forward(features.assemble(), .train(cache: true))
            let dlogits = try headLoss(logits, batch, gradScale: gradScale, tally: &tally)
            _ = head.backward(dlogits, inputGrad: false)
            head.releaseCache()
        }
    }

    /// End-to-end backprop of one micro-batch (plain BP, or BP-DeepSup when units carry
    /// local readouts: their losses, weighted by deep_sup_weight, add to the head's).
    private func backpropPass(_ batch: Batch, gradScale: Float, tally: inout Tally) throws {
        guard let head = net.head else { preconditionFailure("backprop training needs a classifier head") }
        var x = batch.images
        var localGrads: [Tensor?] = []
        var features = HeadFeatures(net: net, batch: batch.count)
        for unit in net.units {
            let y = unit.pre.forward(x, .train(cache: true))
            features.collect(ctx, unit: unit.index, point: .tap, y)
            localGrads.append(unit.local == nil ? nil
                : try localLoss(unit, y, batch, gradScale: gradScale * Float(config.deepSupWeight), tally: &tally))
            x = unit.post.forward(y, .train(cache: true))
            features.collect(ctx, unit: unit.index, point: .output, x)
        }
        let logits = head.forward(features.assemble(), .train(cache: true))
        let dlogits = try headLoss(logits, batch, gradScale: gradScale, tally: &tally)

        // The head's feature gradient, split per tapped unit and spread back over its map.
        let dFeatures = features.split(head.backward(dlogits, inputGrad: true)!)
        var g: Tensor?   // gradient w.r.t. the current unit's output
        for unit in net.units.reversed() {
            if head.point == .output, let df = dFeatures[unit.index] {
                let s = Ops.gapBackward(ctx, inputShape: [batch.count] + unit.outputShape, dy: df)
                if let cur = g { Ops.axpy(ctx, 1, s, cur) } else { g = s }
            }
            let dy = g.map { unit.post.backward($0, inputGrad: true)! } ?? Tensor(zeros: [batch.count] + unit.tapShape)
            if head.point == .tap, let df = dFeatures[unit.index] {
                Ops.axpy(ctx, 1, Ops.gapBackward(ctx, inputShape: [batch.count] + unit.tapShape, dy: df), dy)
            }
            if let local = unit.local, let dl = localGrads[unit.index] {
                Ops.axpy(ctx, 1, local.backward(dl), dy)
            }
            g = unit.pre.backward(dy, inputGrad: unit.index > 0)
        }
        net.releaseCaches()
    }

    // MARK: Evaluation

    /// Accuracy of every local readout and of the head over `provider` (one pass, no
    /// updates, BatchNorm in eval mode).
    public func evaluate(_ provider: BatchProvider, batchSize: Int, progress: Progress? = nil) throws -> Tally {
        var tally = Tally(units: net.units.count)
        let batches = provider.batches(epoch: 0, batchSize: batchSize)
        while let batch = try batches.next() {
            evaluateBatch(batch, tally: &tally)
            progress?.advance(by: batch.count)
        }
        return tally
    }

    public func evaluateBatch(_ batch: Batch, tally: inout Tally) {
        var x = batch.images
        var features = HeadFeatures(net: net, batch: batch.count)
        for unit in net.units {
            let y = unit.pre.forward(x, .eval)
            features.collect(ctx, unit: unit.index, point: .tap, y)
            if let local = unit.local {
                let logits = local.forward(y, cache: false)
                let r = Ops.softmaxCrossEntropy(ctx, logits: logits, labels: batch.labels)
                tally.unitLoss[unit.index] += r.loss * Double(batch.count)
                tally.unitCorrect[unit.index] += r.correct
                tally.unitTop5[unit.index] += Ops.topkCorrect(logits: logits, labels: batch.labels, k: min(5, net.classes))
            }
            x = unit.post.forward(y, .eval)
            features.collect(ctx, unit: unit.index, point: .output, x)
        }
        if let head = net.head {
            let logits = head.forward(features.assemble(), .eval)
            let r = Ops.softmaxCrossEntropy(ctx, logits: logits, labels: batch.labels)
            tally.headLoss += r.loss * Double(batch.count)
            tally.headCorrect += r.correct
            tally.headTop5 += Ops.topkCorrect(logits: logits, labels: batch.labels, k: min(5, net.classes))
        }
        tally.count += batch.count
    }
}

/// Collects GAP features of the units a head reads, and concatenates them in tap order.
struct HeadFeatures {
    let taps: [Int]
    let point: FeatureHead.Point?
    var parts: [Int: Tensor] = [:]
    let batch: Int

    init(net: Network, batch: Int) {
        taps = net.head?.taps ?? []
        point = net.head?.point
        self.batch = batch
    }

    mutating func collect(_ ctx: ComputeContext, unit: Int, point: FeatureHead.Point, _ t: Tensor) {
        guard point == self.point, taps.contains(unit) else { return }
        parts[unit] = Ops.gap(ctx, t)
    }

    /// Inverse of `assemble` for gradients: (n, F) -> per-unit (n, C_unit) copies.
    func split(_ d: Tensor) -> [Int: Tensor] {
        var out: [Int: Tensor] = [:]
        var col = 0
        let total = d.shape[1]
        for t in taps {
            let w = parts[t]!.shape[1]
            let part = Tensor(uninitialized: [batch, w])
            for i in 0..<batch { (part.pointer + i * w).update(from: d.pointer + i * total + col, count: w) }
            out[t] = part
            col += w
        }
        return out
    }

    func assemble() -> Tensor {
        let widths = taps.map { parts[$0]!.shape[1] }
        if taps.count == 1 { return parts[taps[0]]! }
        let total = widths.reduce(0, +)
        let out = Tensor(uninitialized: [batch, total])
        var col = 0
        for (t, w) in zip(taps, widths) {
            let src = parts[t]!.pointer
            for i in 0..<batch { (out.pointer + i * total + col).update(from: src + i * w, count: w) }
            col += w
        }
        return out
    }
}
