import Foundation

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

/// Executes training steps and evaluation passes for a `Network`, with one loop over its
/// blocks. For each block: forward through its units (caching), the local objectives' losses
/// at their taps (and the classifier's, when the head is attached to this block), backward
/// inside the block only (the input gradient at a block boundary is never computed), release
/// the caches, pass the detached output on. A detached head then trains on the collected
/// features. Layer-local (one unit per block), block-local and end-to-end backprop (one
/// whole block with the head attached) are layouts of the network, not branches here.
public final class Trainer {
    public let ctx: ComputeContext
    public let net: Network
    public let config: RecipeConfig
    /// One optimizer per block (updating the attached head too), and the detached predictor's
    /// (a detached head, or the Logistic Fusion gates).
    public let blockOptimizers: [Optimizer]
    public let headOptimizer: Optimizer?
    public private(set) var step = 0
    /// Called during training with (unit name, scores, loss) for every local readout (VGG
    /// units are "units.<i>") and ("head", logits, loss) for the classifier, before the
    /// update (golden tests, debugging).
    public var observer: ((String, Tensor, Double) -> Void)?

    public init(_ ctx: ComputeContext, net: Network) {
        self.ctx = ctx
        self.net = net
        config = net.config
        blockOptimizers = net.blocks.map { _ in OptimizerFactory.make(ctx, net.config) }
        headOptimizer = net.detachedPredictorParameters.isEmpty ? nil : OptimizerFactory.make(ctx, net.config)
    }

    /// Named optimizer state for checkpoints ("units.3.conv.weight.exp_avg", ...).
    public var optimizerState: [Buffer] {
        var out: [Buffer] = []
        for (b, opt) in zip(net.blocks, blockOptimizers) { out += opt.stateTensors(net.trainedParameters(b)) }
        if let opt = headOptimizer { out += opt.stateTensors(net.detachedPredictorParameters) }
        return out
    }

    var optimizers: [Optimizer] { blockOptimizers + (headOptimizer.map { [$0] } ?? []) }

    public var optimizerSteps: [Int] {
        get { optimizers.map(\.steps) }
        set {
            precondition(newValue.count == optimizers.count, "optimizer step counters: \(newValue.count) for \(optimizers.count)")
            for (o, s) in zip(optimizers, newValue) { o.steps = s }
        }
    }

    public func restore(step: Int) { self.step = step }

    // MARK: Training

    /// One optimizer step on `batch` at learning rate `lr`; sums statistics into `tally`.
    public func trainStep(_ batch: Batch, lr: Double, tally: inout Tally) throws {
        let k = config.accumulate
        let micro = (batch.count + k - 1) / k
        let starts = Array(stride(from: 0, to: batch.count, by: micro))
        try trainStep(count: batch.count, micros: starts.count, lr: lr, tally: &tally) { i in
            let len = min(micro, batch.count - starts[i])
            return Batch(images: batch.images.slice(starts[i], len), labels: Array(batch.labels[starts[i]..<starts[i] + len]))
        }
    }

    // MARK: Distributed hooks (Sources/FFEngine/Distributed): nil trains everything here.

    /// Set by a multi-process run: which blocks this process trains, where their outputs
    /// go, and the reduction of each block's gradients over the data-parallel replicas.
    var hooks: TrainerHooks?

    /// One optimizer step over `micros` micro-batches (`micro(i)`, in order) of a batch of
    /// `count` images: gradients are scaled by 1 / `count`. Under data parallelism the
    /// micro-batches are this process's part of the global batch; in a pipeline stage their
    /// images are the stage's input. Only the blocks (and head) this process owns step.
    /// `firstSample`: the position of this process's first row in the global batch (data
    /// parallelism), so random layers draw per sample what one process draws.
    func trainStep(count: Int, micros: Int, lr: Double, tally: inout Tally, firstSample: Int = 0,
                   micro: (Int) throws -> Batch) throws {
        step += 1
        for p in net.parameters { Ops.zero(ctx, p.grad) }
        let scale = 1 / Float(count)
        net.clock.step = step
        net.clock.firstSample = firstSample
        for i in 0..<micros {
            let b = try micro(i)
            try pass(b, gradScale: scale, last: i == micros - 1, tally: &tally)
            net.clock.firstSample += b.count
        }
        let owned = hooks?.blocks ?? net.blocks.indices
        // The detached predictor, a head or the fusion gates (its optimizer exists only then),
        // when trained in this process.
        let predictor = headOptimizer != nil && (hooks?.trainsHead ?? true) ? net.detachedPredictorParameters : nil
        if micros == 0 {   // a replica without rows in this batch still joins the reductions
            for b in owned { try hooks?.gradientsReady(b, net.trainedParameters(net.blocks[b])) }
            if let h = predictor { try hooks?.gradientsReady(net.blocks.count, h) }
        }
        tally.count += count
        for b in owned {
            let params = net.trainedParameters(net.blocks[b])
            try hooks?.awaitGradients(b, params)
            blockOptimizers[b].step(params, lr: lr)
        }
        if let h = predictor, let opt = headOptimizer {
            try hooks?.awaitGradients(net.blocks.count, h)
            opt.step(h, lr: lr)
        }
        // A NaN can hide from the loss (ReLU maps it to 0) yet poison the weights.
        for unit in owned.flatMap({ net.blocks[$0].units }) {
            for p in unit.parameters where Ops.firstNonFinite(ctx, p.value) != nil {
                throw NonFiniteLoss(what: "\(unit.label) (parameter \(p.name))", step: step)
            }
        }
        for b in owned where net.blocks[b].entry.parameters.contains(where: { Ops.firstNonFinite(ctx, $0.value) != nil }) {
            throw NonFiniteLoss(what: "the feature alignment layer of block \(b + 1)", step: step)
        }
        if let h = predictor, h.contains(where: { Ops.firstNonFinite(ctx, $0.value) != nil }) {
            throw NonFiniteLoss(what: net.head != nil ? "the classifier head (its parameters)" : "the fusion gates", step: step)
        }
    }

    /// The CE of a unit's local scores (counted in `tally` as readout `r`, stopped if not
    /// finite) and dL/dscores scaled by `gradScale`.
    private func localLoss(_ unit: Unit, readout r: Int, _ y: Tensor, _ batch: Batch, gradScale: Float,
                           tally: inout Tally, scores: inout [Tensor]) throws -> Tensor {
        let logits = unit.local!.forward(y, cache: true)
        let dlogits = Tensor(uninitialized: logits.shape)
        let res = Ops.softmaxCrossEntropy(ctx, logits: logits, labels: batch.labels, dlogits: dlogits, gradScale: gradScale)
        if !res.loss.isFinite { throw NonFiniteLoss(what: unit.label, step: step) }
        observer?(unit.name, logits, res.loss)
        tally.unitLoss[r] += res.loss * Double(batch.count)
        tally.unitCorrect[r] += res.correct
        if config.pred.hasPrefix("goodness-") { scores.append(logits) }
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

    /// Forward/backward of one micro-batch, block by block; gradients accumulate into the
    /// parameters and never cross a block boundary.
    /// `last`: the step's last micro-batch, after which each block's gradients are complete.
    private func pass(_ batch: Batch, gradScale: Float, last: Bool, tally: inout Tally) throws {
        var x = batch.images
        var features = HeadFeatures(head: net.head, batch: batch.count)
        var scores: [Tensor] = []
        for block in net.blocks[hooks?.blocks ?? net.blocks.indices] {
            x = try blockPass(block, x, batch, gradScale: gradScale, features: &features, scores: &scores, tally: &tally)
            if last { try hooks?.gradientsReady(block.index, net.trainedParameters(block)) }
        }
        guard try hooks?.passOn(x, batch, features: &features, scores: &scores) ?? true else { return }
        if let head = net.head, net.headBlock == nil {
            let logits = head.forward(features.assemble(), .train(cache: true))
            let dlogits = try headLoss(logits, batch, gradScale: gradScale, tally: &tally)
            _ = head.backward(dlogits, inputGrad: false)
            head.releaseCache()
            if last { try hooks?.gradientsReady(net.blocks.count, head.parameters) }
        }
        if let fusion = net.fusion {
            // BiCovG's Logistic Fusion: trained on the detached readout scores.
            let dlogits = try headLoss(fusion.forward(scores, cache: true), batch, gradScale: gradScale, tally: &tally)
            fusion.backward(dlogits)
            fusion.releaseCache()
            if last { try hooks?.gradientsReady(net.blocks.count, fusion.parameters) }
        } else if !scores.isEmpty {
            // SFF's prediction from the readouts: counted, never trained.
            let r = Ops.softmaxCrossEntropy(ctx, logits: predictorScores(scores), labels: batch.labels)
            tally.headLoss += r.loss * Double(batch.count)
            tally.headCorrect += r.correct
        }
    }

    /// One block: returns the detached tensor it passes on.
    private func blockPass(_ block: Block, _ input: Tensor, _ batch: Batch, gradScale: Float,
                           features: inout HeadFeatures, scores: inout [Tensor], tally: inout Tally) throws -> Tensor {
        let head = net.headBlock == block.index ? net.head : nil
        let localScale = head != nil ? gradScale * Float(config.deepSupWeight) : gradScale
        let last = block.units.last!
        var localGrads: [Int: Tensor] = [:]
        var t = block.entry.forward(input, .train(cache: true))
        var lastTap = input
        for unit in block.units {
            let y = unit.body.forward(t, .train(cache: true))
            features.collect(ctx, unit: unit.index, point: .tap, y)
            if unit.local != nil {
                localGrads[unit.index] = try localLoss(unit, readout: net.readouts.firstIndex(of: unit.index)!, y, batch,
                                                       gradScale: localScale, tally: &tally, scores: &scores)
            }
            lastTap = y
            // The last unit's post carries no gradient unless the attached head reads it.
            if unit !== last || head?.reads(unit.index, at: .output) == true {
                t = unit.post.forward(y, .train(cache: true))
                features.collect(ctx, unit: unit.index, point: .output, t)
            }
        }
        var dFeatures: [Int: Tensor] = [:]
        if let head {
            let logits = head.forward(features.assemble(), .train(cache: true))
            let dlogits = try headLoss(logits, batch, gradScale: gradScale, tally: &tally)
            // The head's feature gradient, split per tapped unit and spread back over its map.
            dFeatures = features.split(head.backward(dlogits, inputGrad: true)!)
        }
        var g: Tensor?   // gradient w.r.t. the current unit's output
        for unit in block.units.reversed() {
            if head?.point == .output, let df = dFeatures[unit.index] {
                let s = Ops.gapBackward(ctx, inputShape: [batch.count] + unit.outputShape, dy: df)
                if let cur = g { Ops.axpy(ctx, 1, s, cur) } else { g = s }
            }
            var dy = g.map { unit.post.backward($0, inputGrad: true)! }
            func add(_ d: Tensor) { if let cur = dy { Ops.axpy(ctx, 1, d, cur) } else { dy = d } }
            if head?.point == .tap, let df = dFeatures[unit.index] {
                add(Ops.gapBackward(ctx, inputShape: [batch.count] + unit.tapShape, dy: df))
            }
            if let local = unit.local, let dl = localGrads[unit.index] { add(local.backward(dl)) }
            guard let dyUnit = dy else {
                preconditionFailure("\(unit.label): no loss reaches this unit in block \(block.index + 1)")
            }
            g = unit.body.backward(dyUnit, inputGrad: unit !== block.units.first || block.hasEntry)
        }
        if block.hasEntry { _ = block.entry.backward(g!, inputGrad: false) }
        let out: Tensor
        if head?.reads(last.index, at: .output) == true {
            out = t
        } else {
            out = last.post.forward(lastTap, .train(cache: false))
            features.collect(ctx, unit: last.index, point: .output, out)
        }
        block.releaseCache()
        head?.releaseCache()
        return block.boundary.forward(out, .train(cache: false))
    }

    /// The prediction of pred = goodness-mean (average of the readouts' scores),
    /// goodness-last (the last readout's) or goodness-logistic (their Logistic Fusion).
    func predictorScores(_ scores: [Tensor]) -> Tensor {
        if let fusion = net.fusion { return fusion.forward(scores, cache: false) }
        if config.pred == "goodness-last" || scores.count == 1 { return scores.last! }
        let mean = scores[0].copy()
        for s in scores.dropFirst() { Ops.axpy(ctx, 1, s, mean) }
        Ops.scale(ctx, 1 / Float(scores.count), mean)
        return mean
    }

    // MARK: Evaluation

    /// Accuracy of every local readout and of the predictor over `provider` (one pass, no
    /// updates, BatchNorm in eval mode).
    public func evaluate(_ provider: BatchProvider, batchSize: Int, progress: Progress? = nil) throws -> Tally {
        var tally = Tally(units: net.readouts.count, classes: net.classes)
        let batches = provider.batches(epoch: 0, batchSize: batchSize)
        while let batch = try batches.next() {
            evaluateBatch(batch, tally: &tally)
            progress?.advance(by: batch.count)
        }
        return tally
    }

    public func evaluateBatch(_ batch: Batch, tally: inout Tally) {
        var x = batch.images
        var features = HeadFeatures(head: net.head, batch: batch.count)
        var scores: [Tensor] = []
        var r = 0
        for block in net.blocks {
            x = block.entry.forward(x, .eval)
            for unit in block.units {
                let y = unit.body.forward(x, .eval)
                features.collect(ctx, unit: unit.index, point: .tap, y)
                if let local = unit.local {
                    let logits = local.forward(y, cache: false)
                    let res = Ops.softmaxCrossEntropy(ctx, logits: logits, labels: batch.labels)
                    tally.unitLoss[r] += res.loss * Double(batch.count)
                    tally.unitCorrect[r] += res.correct
                    tally.unitTop5[r] += Ops.topkCorrect(logits: logits, labels: batch.labels, k: min(5, net.classes))
                    tally.confuse(slot: r, logits: logits, labels: batch.labels)
                    if config.pred.hasPrefix("goodness-") { scores.append(logits) }
                    r += 1
                }
                x = unit.post.forward(y, .eval)
                features.collect(ctx, unit: unit.index, point: .output, x)
            }
            x = block.boundary.forward(x, .eval)
        }
        let logits: Tensor? = net.head.map { $0.forward(features.assemble(), .eval) }
            ?? (scores.isEmpty ? nil : predictorScores(scores))
        if let logits {
            let res = Ops.softmaxCrossEntropy(ctx, logits: logits, labels: batch.labels)
            tally.headLoss += res.loss * Double(batch.count)
            tally.headCorrect += res.correct
            tally.headTop5 += Ops.topkCorrect(logits: logits, labels: batch.labels, k: min(5, net.classes))
            tally.confuse(slot: net.readouts.count, logits: logits, labels: batch.labels)
        }
        tally.count += batch.count
    }
}
