import FFEngine
import Foundation
import XCTest

/// BiCovG's pieces in the engine: the covariance-goodness objective (double-precision
/// reference, finite differences, cov off = ASGE goodness bit for bit), the Feature
/// Alignment Layer (identity at init, finite differences through it), Logistic Fusion
/// (init, gradient), Hybrid Goodness Blocks (layouts; a block of m layers equals backprop
/// through those layers), the VGG-16 recipes' geometry, the audit table, and resume.
final class BiCovGTests: XCTestCase, GradientChecking {
    let ctx = ComputeContext(threads: 2)

    func objective(_ map: [Int], k: Int = 3, levels: [Int] = [1, 2, 4], partition: Int = 2, covariance: Bool = true,
                   patches: Bool = true, classes: Int = 4) -> CovarianceGoodness {
        CovarianceGoodness(ctx, name: "t.local", mapShape: map, partition: partition, covariance: covariance, directions: k,
                           levels: levels, patchEnergies: patches, classes: classes, readoutStd: 0.5, seed: 3)
    }

    func relu(_ t: Tensor) -> Tensor {
        for i in 0..<t.count { t[i] = max(t[i], 0) }
        return t
    }

    /// A small VGG-style BiCovG config.
    func config(channels: [Int] = [4, 6, 6, 8], poolAfter: [Int] = [2], blocks: String = "per-unit",
                pred: String = "goodness-logistic", fal: Bool = true) -> RecipeConfig {
        var c = RecipeConfig(name: "t", paper: "test", summary: "t", training: "layer-local", dataset: "none", arch: "custom",
                             lr: 1e-3, minLr: 1e-3, weightDecay: 0, epochs: 1, batchSize: 4)
        c.channels = channels
        c.poolAfter = poolAfter
        c.blocks = blocks
        c.alpha = 2
        c.localLoss = "covariance-goodness"
        c.covDirections = 3
        c.fal = fal
        c.pred = pred
        return c
    }

    // MARK: the objective

    /// Scores = [patch energies | covariance energies] R + b, each energy recomputed in double
    /// from the map and the stored directions (levels clipped to the 5x3 map: {1, 2, 3}).
    func testScoresEqualDoubleReference() {
        let (n, c, h, w) = (2, 5, 5, 3)
        let obj = objective([c, h, w], k: 3, levels: [1, 2, 4], partition: 2)
        XCTAssertEqual(obj.mapLevels, [1, 2, 3])
        XCTAssertEqual(obj.featureSize, c * 4 + 3 * (1 + 4 + 9))
        let y = relu(random([n, c, h, w], seed: 1))
        let scores = obj.forward(y, cache: false)
        let u = obj.directions!, r = obj.readout, b = obj.readoutBias
        func bins(_ p: Int, _ size: Int) -> [Range<Int>] {
            (0..<p).map { i in (i * size / p)..<(((i + 1) * size + p - 1) / p) }
        }
        for s in 0..<n {
            func yv(_ ch: Int, _ i: Int, _ j: Int) -> Double { Double(y[((s * c + ch) * h + i) * w + j]) }
            var f: [Double] = []
            for ch in 0..<c {
                for ri in bins(2, h) { for ci in bins(2, w) {
                    f.append(ri.flatMap { i in ci.map { j in yv(ch, i, j) * yv(ch, i, j) } }.reduce(0, +)
                             / Double(ri.count * ci.count))
                } }
            }
            for p in [1, 2, 3] {
                for k in 0..<3 {
                    for ri in bins(p, h) { for ci in bins(p, w) {
                        var acc = 0.0
                        for i in ri { for j in ci {
                            let z = (0..<c).reduce(0.0) { $0 + Double(u[k * c + $1]) * yv($1, i, j) }
                            acc += z * z
                        } }
                        f.append(acc / Double(ri.count * ci.count))
                    } }
                }
            }
            XCTAssertEqual(f.count, obj.featureSize)
            for cls in 0..<4 {
                let ref = (0..<f.count).reduce(Double(b[cls])) { $0 + f[$1] * Double(r[$1 * 4 + cls]) }
                XCTAssertEqual(Double(scores[s * 4 + cls]), ref, accuracy: 1e-4 * max(1, abs(ref)), "sample \(s) class \(cls)")
            }
        }
    }

    func testDirectionsAreFixedUnitRowsStoredAsBuffers() {
        let obj = objective([7, 4, 4], k: 5)
        let u = obj.directions!
        XCTAssertEqual(u.shape, [5, 7])
        for k in 0..<5 {
            XCTAssertEqual((0..<7).reduce(0.0) { $0 + Double(u[k * 7 + $1] * u[k * 7 + $1]) }, 1, accuracy: 1e-5)
        }
        XCTAssertEqual(obj.buffers.map(\.name), ["t.local.readout.weight", "t.local.readout.bias", "t.local.directions"])
        XCTAssertTrue(obj.parameters.isEmpty, "nothing in the objective trains")
        XCTAssertEqual(objective([7, 4, 4], k: 5).directions!.array, u.array, "drawn from the seed and the name")
    }

    /// The maps come from convs without ReLU: the energies are smooth in y of any sign, and
    /// a finite difference across a ReLU kink would measure neither side's slope.
    func testObjectiveGradientsMatchFiniteDifferences() {
        let x = random([3, 4, 5, 4], seed: 2)
        let labels: [Int32] = [0, 3, 1]
        for (patches, what) in [(true, "patches + covariance"), (false, "covariance only")] {
            let body = Sequential([Conv2d(ctx, name: "c", inChannels: 4, outChannels: 5, kernel: 3, padding: 1, seed: 4)])
            checkGradients(what, body: body, objective: objective([5, 5, 4], k: 4, patches: patches), x: x, labels: labels)
        }
        // More than saveProjectionsUpToChannels channels: the backward recomputes z = U y.
        let wide = CovarianceGoodness.saveProjectionsUpToChannels + 2
        let body = Sequential([Conv2d(ctx, name: "w", inChannels: 2, outChannels: wide, kernel: 1, seed: 5)])
        checkGradients("covariance, z recomputed", body: body, objective: objective([wide, 3, 3], k: 3, partition: 1),
                       x: random([2, 2, 3, 3], seed: 3), labels: [2, 1])
    }

    /// cov = false: the same network, scores and gradients as local_loss = spatial-goodness.
    func testCovOffIsPlainASGEGoodnessBitForBit() throws {
        var cov = config(pred: "goodness-mean", fal: false)
        cov.cov = false
        var asge = cov
        asge.localLoss = "spatial-goodness"
        let x = random([4, 3, 8, 8], seed: 5)
        let labels: [Int32] = [0, 1, 2, 1]
        var results: [[String: [Float]]] = []
        var logits: [[String: [Float]]] = []
        for c in [cov, asge] {
            let net = try Network(ctx, config: c, inputShape: [3, 8, 8], classes: 3)
            let trainer = Trainer(ctx, net: net)
            var seen: [String: [Float]] = [:]
            trainer.observer = { name, s, _ in seen[name] = s.array }
            var t = Tally(units: net.readouts.count)
            try trainer.trainStep(Batch(images: x, labels: labels), lr: 0, tally: &t)
            results.append(Dictionary(uniqueKeysWithValues: (net.parameters.map { ($0.name, $0.grad.array) }
                + net.buffers.map { ($0.name, $0.value.array) })))
            logits.append(seen)
        }
        XCTAssertEqual(results[0], results[1], "gradients and buffers")
        XCTAssertEqual(logits[0], logits[1], "readout scores")
        XCTAssertEqual(logits[0].count, 4)
    }

    // MARK: Feature Alignment Layer

    func testFeatureAlignmentStartsAsIdentityAndTrains() throws {
        let fal = FeatureAlignment.layer(ctx, name: "fal", channels: 4, bias: true)
        XCTAssertTrue(fal.parameters.allSatisfy { $0.value.array.allSatisfy { $0 == 0 } }, "zero-initialised")
        let x = random([2, 4, 5, 5], seed: 6)
        XCTAssertEqual(fal.forward(x, .eval).array, x.array, "identity at init")
        // Finite differences through x + conv1x1(x) (moved away from zero) and a conv into the objective.
        for p in fal.parameters { var rng = RNG(seed: 9); rng.fillNormal(p.value, std: 0.3) }
        let body = Sequential([fal, Conv2d(ctx, name: "c", inChannels: 4, outChannels: 5, kernel: 3, padding: 1, seed: 7)])
        checkGradients("alignment + conv", body: body, objective: objective([5, 5, 5]), x: x, labels: [1, 3])

        let net = try Network(ctx, config: config(), inputShape: [3, 8, 8], classes: 3)
        XCTAssertEqual(net.blocks.map(\.hasEntry), [false, true, true, true], "every block input but the image")
        XCTAssertEqual(net.blocks[2].entry.parameters.map(\.name), ["blocks.2.fal.weight", "blocks.2.fal.bias"])
        XCTAssertEqual(net.blocks[2].entry.parameters[0].shape, [6, 6, 1, 1])
        XCTAssertFalse(try Network(ctx, config: config(fal: false), inputShape: [3, 8, 8], classes: 3).blocks
            .contains { $0.hasEntry })
    }

    /// The alignment conv gets a gradient from the loss of the block it enters, and that
    /// block's optimizer updates it.
    func testFeatureAlignmentGradientComesFromItsBlock() throws {
        let net = try Network(ctx, config: config(), inputShape: [3, 8, 8], classes: 3)
        let trainer = Trainer(ctx, net: net)
        var t = Tally(units: net.readouts.count)
        try trainer.trainStep(Batch(images: random([4, 3, 8, 8], seed: 8), labels: [0, 1, 2, 0]), lr: 0, tally: &t)
        for b in net.blocks.dropFirst() {
            let w = b.entry.parameters[0].grad.array
            XCTAssertGreaterThan(w.map(abs).max()!, 0, "block \(b.index) alignment weight gradient")
            XCTAssertTrue(net.trainedParameters(b).contains { $0 === b.entry.parameters[0] })
        }
    }

    // MARK: Logistic Fusion

    func testLogisticFusionInitAndGradient() throws {
        let net = try Network(ctx, config: config(), inputShape: [3, 8, 8], classes: 3)
        let fusion = try XCTUnwrap(net.fusion)
        let ramp: [Double] = [-2, -2 + 4.0 / 3, -2 + 8.0 / 3, 2]
        XCTAssertEqual(fusion.weight.value.array, ramp.map { Float($0) })
        XCTAssertEqual(fusion.weight.decay, false)
        XCTAssertTrue(net.parameters.contains { $0 === fusion.weight })
        let scores = (0..<4).map { random([3, 3], seed: UInt64(20 + $0)) }
        let labels: [Int32] = [2, 0, 1]
        let out = fusion.forward(scores, cache: true)
        for i in 0..<out.count {
            let ref = (0..<4).reduce(0.0) { $0 + Double(fusion.gates[$1]) * Double(scores[$1][i]) }
            XCTAssertEqual(Double(out[i]), ref, accuracy: 1e-5)
        }
        let d = Tensor(uninitialized: out.shape)
        _ = Ops.softmaxCrossEntropy(ctx, logits: out, labels: labels, dlogits: d)
        Ops.zero(ctx, fusion.weight.grad)
        fusion.backward(d)
        for l in 0..<4 {
            func f(_ delta: Float) -> Double {
                let orig = fusion.weight.value[l]
                fusion.weight.value[l] = orig + delta
                defer { fusion.weight.value[l] = orig }
                return Ops.softmaxCrossEntropy(ctx, logits: fusion.forward(scores, cache: false), labels: labels).loss
            }
            let num = (f(1e-3) - f(-1e-3)) / 2e-3
            XCTAssertEqual(Double(fusion.weight.grad[l]), num, accuracy: 2e-3 * max(1, abs(num)), "gate \(l)")
        }
    }

    // MARK: Hybrid Goodness Blocks

    func testGroupsOfBlocks() throws {
        var c = try Recipes.named("bicovg-hgb-tinyimagenet")
        func sizes(_ blocks: String) throws -> [Int] {
            c.blocks = blocks
            return try Network(ctx, config: c, inputShape: [3, 64, 64], classes: 200).blocks.map(\.units.count)
        }
        XCTAssertEqual(try sizes("groups-of-2"), [2, 2, 2, 2, 2, 2, 1])
        XCTAssertEqual(try sizes("groups-of-4"), [4, 4, 4, 1])
        XCTAssertEqual(try sizes("groups-of-1"), Array(repeating: 1, count: 13))
        XCTAssertEqual(try sizes("groups-of-20"), [13])
        for bad in ["groups-of-0", "groups-of-x", "groups-of-"] {
            XCTAssertThrowsError(try BlockPartition.parse(bad)) { XCTAssertTrue("\($0)".contains("groups-of-M"), "\($0)") }
        }
    }

    /// Each block of m layers (with its alignment layer) gets exactly the gradients of
    /// backprop through those layers from the block's loss: bit-identical to hand-chained
    /// backprop, and equal to finite differences of the block loss as a function of the
    /// block's first layer and its alignment conv.
    func testHybridBlockEqualsBackpropThroughItsLayers() throws {
        let c = config(blocks: "groups-of-2", pred: "goodness-last")
        try assertTrainerMatchesHandChained(c, shape: [3, 3, 8, 8])

        let net = try Network(ctx, config: c, inputShape: [3, 8, 8], classes: 5)
        let trainer = Trainer(ctx, net: net)
        let x = random([3, 3, 8, 8], seed: 7)
        let labels: [Int32] = [0, 1, 2]
        let block = net.blocks[1]
        for p in block.entry.parameters { var rng = RNG(seed: 4); rng.fillNormal(p.value, std: 0.2) }
        var t = Tally(units: net.readouts.count)
        try trainer.trainStep(Batch(images: x, labels: labels), lr: 0, tally: &t)
        // The block's input: block 0's output, detached.
        var input = x
        for u in net.blocks[0].units { input = u.post.forward(u.body.forward(input, .eval), .eval) }
        /// The block's loss, and which ReLUs of its layers are active (a finite difference
        /// across a kink measures neither side's slope, so such entries are skipped).
        func blockLoss() -> (loss: Double, active: [Bool]) {
            var h = block.entry.forward(input, .eval)
            var active: [Bool] = []
            for u in block.units {
                let y = u.body.forward(h, .eval)
                active += y.array.map { $0 > 0 }
                if u === block.units.last! {
                    return (Ops.softmaxCrossEntropy(ctx, logits: u.local!.forward(y, cache: false), labels: labels).loss, active)
                }
                h = u.post.forward(y, .eval)
            }
            fatalError("empty block")
        }
        var checked = 0
        for p in [block.units[0].body.parameters[0], block.units[1].body.parameters[1], block.entry.parameters[0]] {
            let g = p.grad.array
            let scale = max(g.map { abs(Double($0)) }.max()!, 1e-3)
            for i in stride(from: 0, to: p.value.count, by: max(1, p.value.count / 16)) {
                let orig = p.value[i]
                p.value[i] = orig + 1e-3
                let plus = blockLoss()
                p.value[i] = orig - 1e-3
                let minus = blockLoss()
                p.value[i] = orig
                guard plus.active == minus.active else { continue }
                let num = (plus.loss - minus.loss) / 2e-3
                XCTAssertEqual(Double(g[i]), num, accuracy: 2e-2 * max(abs(num), 0.1 * scale) + 2e-4, "\(p.name)[\(i)]")
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 20)
    }

    // MARK: recipes

    /// VGG-16 on 64x64: taps at 64, 32, 16, 8, 4 pixels; one covariance-goodness readout and
    /// one alignment layer per layer; partitions from alpha = 1 (C_L = 512).
    func testVGG16GeometryAt64And224() throws {
        let tiny = try Network(ctx, config: try Recipes.named("bicovg-tinyimagenet"), inputShape: [3, 64, 64], classes: 200)
        XCTAssertEqual(tiny.units.map { $0.tapShape[0] }, VGGSpec.vgg16.channels)
        XCTAssertEqual(tiny.units.map { $0.tapShape[1] }, [64, 64, 32, 32, 16, 16, 16, 8, 8, 8, 4, 4, 4])
        XCTAssertEqual(tiny.units.last!.outputShape, [512, 2, 2])
        XCTAssertEqual(tiny.readouts.count, 13)
        XCTAssertEqual(tiny.blocks.filter(\.hasEntry).count, 12)
        XCTAssertEqual(tiny.partitions, [8, 8, 4, 4, 2, 2, 2, 1, 1, 1, 1, 1, 1])
        let last = try XCTUnwrap(tiny.objectives.last as? CovarianceGoodness)
        XCTAssertEqual(last.mapLevels, [1, 2, 4])
        XCTAssertEqual(last.featureSize, 512 + 64 * 21)
        XCTAssertEqual(tiny.fusion?.weight.value.count, 13)

        let imagenet = try Network(ctx, config: try Recipes.named("bicovg-imagenet100"), inputShape: [3, 224, 224],
                                   classes: 100)
        XCTAssertEqual(imagenet.units.map { $0.tapShape[1] }, [224, 224, 112, 112, 56, 56, 56, 28, 28, 28, 14, 14, 14])
        let cifar = try Network(ctx, config: try Recipes.named("bicovg-cifar100"), inputShape: [3, 32, 32], classes: 100)
        XCTAssertEqual((cifar.objectives.last as? CovarianceGoodness)?.mapLevels, [1, 2], "level 4 clipped on 2x2")

        let bp = try Network(ctx, config: try Recipes.named("bp-vgg16-tinyimagenet"), inputShape: [3, 64, 64], classes: 200)
        XCTAssertEqual(bp.units.map { $0.tapShape }, tiny.units.map { $0.tapShape }, "architecture-matched")
        XCTAssertEqual(bp.blocks.count, 1)
        XCTAssertNil(bp.fusion)
        XCTAssertEqual(bp.head?.featureSize, 512)
        let hgb = try Recipes.named("bicovg-hgb-tinyimagenet")
        XCTAssertEqual(hgb.blocks, "groups-of-2")
        XCTAssertEqual(try RecipeConfig.fromJSON(hgb.json(), source: "t"), hgb)
    }

    /// The audit pairs each local recipe with its backprop twin through a table, and BiCovG
    /// with its hybrid blocks; every entry names a recipe whose settings apply.
    func testAuditPlans() throws {
        XCTAssertEqual(try Recipes.auditPlan("dtgff-cifar100", accumulate: 4),
                       [AuditEntry(recipe: "dtgff-cifar100"), AuditEntry(recipe: "bpds-cifar100"),
                        AuditEntry(recipe: "bpds-cifar100", accumulate: 4)])
        XCTAssertEqual(try Recipes.auditPlan("sff-resnet18-imagenette", accumulate: 2).map(\.recipe),
                       ["sff-resnet18-imagenette", "bp-resnet18-imagenette", "bp-resnet18-imagenette"])
        let plan = try Recipes.auditPlan("bicovg-tinyimagenet", accumulate: 4)
        XCTAssertEqual(plan.map(\.label), [
            "bicovg-tinyimagenet", "bicovg-hgb-tinyimagenet (blocks=groups-of-2)",
            "bicovg-hgb-tinyimagenet (blocks=groups-of-4)", "bp-vgg16-tinyimagenet",
            "bp-vgg16-tinyimagenet (accumulate 4)"])
        for (local, twin) in Recipes.backpropTwins {
            let a = try Recipes.named(local), b = try Recipes.named(twin)
            XCTAssertEqual(a.batchSize, b.batchSize, "\(local) and \(twin) at the same batch")
            XCTAssertEqual(a.arch, b.arch, local)
            XCTAssertTrue(b.headBackprop, twin)
        }
        for e in plan {
            var c = try Recipes.named(e.recipe)
            for s in e.settings { c = try c.setting(s) }
            XCTAssertNoThrow(try c.validate(), e.label)
        }
        XCTAssertThrowsError(try Recipes.auditPlan("bp-vgg16-cifar100", accumulate: 4)) {
            XCTAssertTrue("\($0)".contains("bicovg-cifar100"), "lists the audited recipes: \($0)")
        }
    }

    func testConfigChecks() throws {
        var c = config()
        c.cov = false
        c.covPatchEnergies = false
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("cov_patch_energies"), "\($0)") }
        c = config()
        c.covLevels = [1, 0]
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("cov_levels"), "\($0)") }
        c = config()
        c.covDirections = 0
        XCTAssertThrowsError(try c.validate())
        c = config()
        c.training = "backprop"
        c.pred = "goodness-logistic"
        XCTAssertThrowsError(try c.validate())
        let set = try Recipes.named("bicovg-cifar100").setting("cov=false").setting("cov_levels=[1,2]")
            .setting("pred=goodness-mean").setting("fal=false").setting("cov_directions=16")
        XCTAssertEqual([set.cov, set.fal], [false, false])
        XCTAssertEqual(set.covLevels, [1, 2])
        XCTAssertEqual(set.covDirections, 16)
        XCTAssertNoThrow(try set.validate())
    }

    // MARK: runs

    /// A short run learns, and a resumed run (directions, alignment layers, fusion gates and
    /// their optimizer states in the checkpoint) ends bit-identical to an uninterrupted one.
    func testShortRunLearnsAndResumesBitIdentically() throws {
        var c = config(channels: [8, 8, 16], poolAfter: [1], blocks: "per-unit")
        c.lr = 1e-2
        c.minLr = 1e-3
        c.epochs = 4
        c.batchSize = 32
        let train = InMemoryProvider.synthetic(count: 256, classes: 4, shape: [3, 8, 8], noise: 1, seed: 11)
        let val = InMemoryProvider.synthetic(count: 128, classes: 4, shape: [3, 8, 8], noise: 1, seed: 11)
        let data = RunData(train: train, val: val, test: val)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ffrepro-bicovg-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        func run(_ c: RecipeConfig, _ sub: String, resume: Bool = false) throws -> RunResult {
            let r = try TrainingRun(ctx, config: c, data: data, directory: dir.appendingPathComponent(sub),
                                    resume: resume ? dir.appendingPathComponent(sub + "/last.h5") : nil)
            r.log = { _ in }
            r.showProgress = false
            return try r.run()
        }
        let full = try run(c, "full")
        XCTAssertGreaterThan(try XCTUnwrap(full.testTop1), 0.7, "Logistic Fusion of the readouts after training")
        var short = c
        short.epochs = 1
        _ = try run(short, "part")
        _ = try run(c, "part", resume: true)
        let a = try Checkpoint.read(from: dir.appendingPathComponent("full/last.h5"))
        let b = try Checkpoint.read(from: dir.appendingPathComponent("part/last.h5"))
        XCTAssertEqual(a.tensors.map(\.0), b.tensors.map(\.0))
        for name in ["params/fusion.weight", "params/blocks.1.fal.weight", "buffers/units.2.local.directions",
                     "optim/fusion.weight.exp_avg"] {
            XCTAssertNotNil(a.tensor(name), name)
        }
        for ((name, x), (_, y)) in zip(a.tensors, b.tensors) {
            XCTAssertEqual(x.array, y.array, "\(name) differs between a full run and a resumed one")
        }
    }
}
