import FFEngine
import Foundation
import XCTest

/// Composed-step gradient checks, BP-DeepSup gradient decomposition, resume/determinism,
/// and a short training run that only succeeds when the local gradients are right.
final class TrainerTests: XCTestCase {
    let ctx = ComputeContext(threads: 2)

    func tinyConfig(training: String = "layer-local", pred: String = "fusion", channels: [Int] = [4, 6],
                    poolAfter: [Int] = [1], classes: Int = 3, lr: Double = 0) -> RecipeConfig {
        var c = RecipeConfig(name: "tiny", paper: "test", summary: "tiny", training: training, dataset: "none",
                             arch: "custom", lr: max(lr, 1e-12), minLr: 0, weightDecay: 0, epochs: 1, batchSize: 4)
        c.channels = channels
        c.poolAfter = poolAfter
        c.pred = pred
        c.alpha = 2
        return c
    }

    /// Gradients of one training step with learning rate 0 (parameters do not move).
    func gradients(_ net: Network, _ batch: Batch) throws -> (grads: [String: [Float]], tally: Tally) {
        let trainer = Trainer(ctx, net: net)
        var tally = Tally(units: net.units.count)
        try trainer.trainStep(batch, lr: 0, tally: &tally)
        var out: [String: [Float]] = [:]
        for p in net.parameters { out[p.name] = p.grad.array }
        return (out, tally)
    }

    // MARK: double-precision reference of one local step

    /// Mean CE of a unit's readout: conv3x3(pad 1) -> ReLU -> adaptive goodness -> (gR)/T + b.
    func referenceLocalLoss(x: [Double], shape: [Int], w: [Double], b: [Double], cout: Int, p: Int,
                            r: [Double], rb: [Double], tau: Double?, labels: [Int32]) -> Double {
        let (n, cin, h, wd) = (shape[0], shape[1], shape[2], shape[3])
        let classes = rb.count
        var loss = 0.0
        for s in 0..<n {
            var y = [Double](repeating: 0, count: cout * h * wd)
            for co in 0..<cout {
                for i in 0..<h {
                    for j in 0..<wd {
                        var acc = b[co]
                        for ci in 0..<cin {
                            for ki in 0..<3 {
                                for kj in 0..<3 {
                                    let ii = i + ki - 1, jj = j + kj - 1
                                    if ii < 0 || jj < 0 || ii >= h || jj >= wd { continue }
                                    acc += w[((co * cin + ci) * 3 + ki) * 3 + kj] * x[((s * cin + ci) * h + ii) * wd + jj]
                                }
                            }
                        }
                        y[(co * h + i) * wd + j] = max(acc, 0)
                    }
                }
            }
            var g: [Double] = []
            for co in 0..<cout {
                for pi in 0..<p {
                    for pj in 0..<p {
                        let r0 = pi * h / p, r1 = ((pi + 1) * h + p - 1) / p
                        let c0 = pj * wd / p, c1 = ((pj + 1) * wd + p - 1) / p
                        var acc = 0.0
                        for i in r0..<r1 { for j in c0..<c1 { let v = y[(co * h + i) * wd + j]; acc += v * v } }
                        g.append(acc / Double((r1 - r0) * (c1 - c0)))
                    }
                }
            }
            let t = exp(tau ?? 0)
            var logits = [Double](repeating: 0, count: classes)
            for k in 0..<classes {
                var acc = 0.0
                for d in 0..<g.count { acc += g[d] * r[d * classes + k] }
                logits[k] = acc / t + rb[k]
            }
            let m = logits.max()!
            let lse = m + log(logits.reduce(0) { $0 + exp($1 - m) })
            loss += lse - logits[Int(labels[s])]
        }
        return loss / Double(n)
    }

    func checkLocalGradients(temperature: Bool) throws {
        var config = tinyConfig(channels: [3, 4], poolAfter: [1], classes: 3)
        config.alpha = 2
        config.learnTemperature = temperature
        config.temperatureInit = temperature ? 0.4 : 0
        let shape = [3, 2, 6, 6]
        let net = try Network(ctx, config: config, inputShape: Array(shape.dropFirst()), classes: 3)
        let x = Tensor(uninitialized: shape)
        var rng = RNG(seed: 5)
        rng.fillNormal(x, std: 1)
        let labels: [Int32] = [0, 2, 1]
        let (grads, _) = try gradients(net, Batch(images: x, labels: labels))

        // Unit 2 sees LayerNorm(RMSPool(Y1)) of the engine's forward pass.
        let y0 = net.units[0].body.forward(x, .eval)
        let x1 = net.units[0].post.forward(y0, .eval)
        for (u, input) in [(0, x), (1, x1)] {
            let unit = net.units[u]
            let conv = unit.body.layers[0] as! Conv2d
            let local = unit.local as! SpatialGoodness
            let w = conv.weight.value.array.map(Double.init), b = conv.bias!.value.array.map(Double.init)
            let r = local.readout.array.map(Double.init), rb = local.readoutBias.array.map(Double.init)
            let tau = local.logTemperature.map { Double($0.value[0]) }
            let xs = input.array.map(Double.init)
            let cout = conv.outChannels
            func f(_ w: [Double], _ b: [Double], _ tau: Double?) -> Double {
                referenceLocalLoss(x: xs, shape: input.shape, w: w, b: b, cout: cout, p: local.partition, r: r, rb: rb,
                                   tau: tau, labels: labels)
            }
            let gw = try XCTUnwrap(grads[conv.weight.name])
            let idx = Array(0..<gw.count).filter { $0 % 3 == 0 }
            var wp = w
            for i in idx {
                let eps = 1e-5
                wp[i] = w[i] + eps
                let fp = f(wp, b, tau)
                wp[i] = w[i] - eps
                let fm = f(wp, b, tau)
                wp[i] = w[i]
                let num = (fp - fm) / (2 * eps)
                XCTAssertEqual(Double(gw[i]), num, accuracy: 2e-3 * max(1, abs(num)) + 1e-5, "unit \(u) weight \(i)")
            }
            let gb = try XCTUnwrap(grads[conv.bias!.name])
            var bp = b
            for i in b.indices {
                bp[i] = b[i] + 1e-5
                let fp = f(w, bp, tau)
                bp[i] = b[i] - 1e-5
                let fm = f(w, bp, tau)
                bp[i] = b[i]
                XCTAssertEqual(Double(gb[i]), (fp - fm) / 2e-5, accuracy: 2e-3 * max(1, abs((fp - fm) / 2e-5)) + 1e-5,
                               "unit \(u) bias \(i)")
            }
            if let tau, let t = local.logTemperature {
                let num = (f(w, b, tau + 1e-5) - f(w, b, tau - 1e-5)) / 2e-5
                XCTAssertEqual(Double(try XCTUnwrap(grads[t.name])[0]), num, accuracy: 2e-3 * max(1, abs(num)),
                               "unit \(u) log-temperature")
            }
        }
    }

    func testLayerLocalStepGradientMatchesFiniteDifferences() throws {
        try checkLocalGradients(temperature: false)
    }

    func testTemperatureGradientMatchesFiniteDifferences() throws {
        try checkLocalGradients(temperature: true)
    }

    /// decoupled_norm = false: the readout sees LayerNorm(Y), so the local gradient passes
    /// through the LayerNorm backward. Finite differences of the unit's loss (float forward).
    func testCoupledNormLocalGradientMatchesFiniteDifferences() throws {
        var c = tinyConfig(channels: [3, 4], poolAfter: [1], classes: 3)
        c.decoupledNorm = false
        let shape = [4, 2, 6, 6]
        let x = Tensor(uninitialized: shape)
        var rng = RNG(seed: 21)
        rng.fillNormal(x, std: 1)
        let batch = Batch(images: x, labels: [0, 2, 1, 1])
        let net = try Network(ctx, config: c, inputShape: Array(shape.dropFirst()), classes: 3)
        XCTAssertTrue(net.units[0].body.layers.last is LayerNorm, "LayerNorm sits before the tap")
        let (grads, _) = try gradients(net, batch)
        let trainer = Trainer(ctx, net: net)
        func loss() -> Double {
            var t = Tally(units: net.units.count)
            trainer.evaluateBatch(batch, tally: &t)
            return t.unitMeanLoss[0]
        }
        let w = (net.units[0].body.layers[0] as! Conv2d).weight
        let g = try XCTUnwrap(grads[w.name])
        for i in stride(from: 0, to: w.value.count, by: 4) {
            let orig = w.value[i]
            let eps: Float = 2e-4
            w.value[i] = orig + eps
            let fp = loss()
            w.value[i] = orig - eps
            let fm = loss()
            w.value[i] = orig
            let num = (fp - fm) / Double(2 * eps)
            XCTAssertEqual(Double(g[i]), num, accuracy: 2e-2 * max(abs(num), 0.05), "coupled-norm weight \(i)")
        }
    }

    // MARK: BP-DeepSup

    /// For the last unit, BP-DeepSup's weight gradient is the backpropagated final-loss
    /// gradient (deep_sup_weight 0) plus the unit's own local-loss gradient (which a
    /// layer-local step computes independently).
    func testDeepSupGradientIsFinalPlusLocal() throws {
        let shape = [4, 3, 8, 8]
        let x = Tensor(uninitialized: shape)
        var rng = RNG(seed: 9)
        rng.fillNormal(x, std: 1)
        let batch = Batch(images: x, labels: [0, 1, 2, 1])
        func grads(_ training: String, weight: Double) throws -> [String: [Float]] {
            var c = tinyConfig(training: training, pred: training == "layer-local" ? "last" : "fusion",
                               channels: [4, 6, 6], poolAfter: [1])
            c.deepSupWeight = weight
            let net = try Network(ctx, config: c, inputShape: Array(shape.dropFirst()), classes: 3)
            return try gradients(net, batch).grads
        }
        let both = try grads("deep-sup", weight: 1)
        let finalOnly = try grads("deep-sup", weight: 0)
        let twice = try grads("deep-sup", weight: 2)
        let local = try grads("layer-local", weight: 1)
        for name in ["units.2.conv.weight", "units.2.conv.bias"] {
            let a = try XCTUnwrap(both[name]), f = try XCTUnwrap(finalOnly[name]), l = try XCTUnwrap(local[name])
            let scale = a.map { abs(Double($0)) }.max()! + 1e-6
            for i in a.indices {
                XCTAssertEqual(Double(a[i]), Double(f[i]) + Double(l[i]), accuracy: 1e-4 * scale, "\(name)[\(i)]")
            }
        }
        // Every unit: the local part is linear in the weight (w=2 adds it once more).
        for name in both.keys where name.hasPrefix("units.") && name.hasSuffix("conv.weight") {
            let a = both[name]!, f = finalOnly[name]!, t = twice[name]!
            let scale = t.map { abs(Double($0)) }.max()! + 1e-6
            for i in a.indices {
                XCTAssertEqual(Double(t[i]) - Double(a[i]), Double(a[i]) - Double(f[i]), accuracy: 1e-4 * scale, "\(name)[\(i)]")
            }
        }
        XCTAssertNotEqual(both["units.0.conv.weight"]!, finalOnly["units.0.conv.weight"]!,
                          "local losses of later units must reach the first unit through backprop")
    }

    /// Finite differences of the whole BP loss (float forward, small network) against the
    /// backprop gradient of the first conv layer, through BatchNorm, ReLU, max pooling and GAP.
    func testBackpropGradientMatchesFiniteDifferences() throws {
        try checkBackpropGradient(pred: "fusion", headInput: "tap")
        try checkBackpropGradient(pred: "last", headInput: "output")
    }

    func checkBackpropGradient(pred: String, headInput: String) throws {
        let shape = [4, 2, 6, 6]
        let x = Tensor(uninitialized: shape)
        var rng = RNG(seed: 3)
        rng.fillNormal(x, std: 1)
        let batch = Batch(images: x, labels: [0, 1, 2, 0])
        var c = tinyConfig(training: "backprop", channels: [3, 4], poolAfter: [1])
        c.pool = .avg
        c.pred = pred
        c.headInput = headInput
        let net = try Network(ctx, config: c, inputShape: Array(shape.dropFirst()), classes: 3)
        let (grads, _) = try gradients(net, batch)
        let w = (net.units[0].body.layers[0] as! Conv2d).weight
        func loss() throws -> Double {
            let trainer = Trainer(ctx, net: net)
            var t = Tally(units: net.units.count)
            for b in net.buffers { b.value.fill(b.name.hasSuffix("running_var") ? 1 : 0) }
            try trainer.trainStep(batch, lr: 0, tally: &t)
            return t.headMeanLoss
        }
        let g = try XCTUnwrap(grads[w.name])
        for i in stride(from: 0, to: w.value.count, by: 5) {
            let orig = w.value[i]
            let eps: Float = 1e-3
            w.value[i] = orig + eps
            let fp = try loss()
            w.value[i] = orig - eps
            let fm = try loss()
            w.value[i] = orig
            let num = (fp - fm) / Double(2 * eps)
            XCTAssertEqual(Double(g[i]), num, accuracy: 2e-2 * max(abs(num), 0.05), "\(pred)/\(headInput): first conv weight \(i)")
        }
    }

    // MARK: Training signal

    /// A few epochs on a synthetic template task must lift the layer readouts far above
    /// chance. Readouts are fixed random projections, so only correct local gradients
    /// into the conv weights can do that (a zeroed or sign-flipped gradient stays near 25%).
    func testShortTrainingLearns() throws {
        var c = tinyConfig(channels: [8, 16], poolAfter: [1], classes: 4, lr: 1e-2)
        c.batchSize = 32
        c.epochs = 6
        c.minLr = 1e-3
        c.weightDecay = 1e-3
        let train = InMemoryProvider.synthetic(count: 512, classes: 4, shape: [3, 8, 8], noise: 1, seed: 11)
        let val = InMemoryProvider.synthetic(count: 256, classes: 4, shape: [3, 8, 8], noise: 1, seed: 11)
        let net = try Network(ctx, config: c, inputShape: [3, 8, 8], classes: 4)
        let trainer = Trainer(ctx, net: net)
        let before = try trainer.evaluate(val, batchSize: 64)
        for epoch in 0..<c.epochs {
            var t = Tally(units: 2)
            for b in try train.batches(epoch: epoch, batchSize: c.batchSize).collect() {
                try trainer.trainStep(b, lr: OptimizerFactory.learningRate(c, epoch: epoch), tally: &t)
            }
        }
        let after = try trainer.evaluate(val, batchSize: 64)
        XCTAssertGreaterThan(after.unitAccuracy[1], 0.9, "layer 2 readout after training (before: \(before.unitAccuracy))")
        XCTAssertGreaterThan(after.unitAccuracy[1], before.unitAccuracy[1] + 0.3)
        XCTAssertGreaterThan(after.headAccuracy, 0.6)
    }

    // MARK: Determinism and resume

    func testSameSeedGivesBitIdenticalWeights() throws {
        let a = try Network(ctx, config: tinyConfig(), inputShape: [3, 8, 8], classes: 3)
        let b = try Network(ctx, config: tinyConfig(), inputShape: [3, 8, 8], classes: 3)
        for (p, q) in zip(a.parameters + a.buffers.map { Parameter(name: $0.name, value: $0.value) },
                          b.parameters + b.buffers.map { Parameter(name: $0.name, value: $0.value) }) {
            XCTAssertEqual(p.value.array, q.value.array, p.name)
        }
        var other = tinyConfig()
        other.seed = 1
        let c = try Network(ctx, config: other, inputShape: [3, 8, 8], classes: 3)
        XCTAssertNotEqual(a.parameters[0].value.array, c.parameters[0].value.array)
    }

    func testResumeIsBitIdentical() throws {
        var c = tinyConfig(channels: [4, 8], poolAfter: [1], classes: 4, lr: 1e-3)
        c.epochs = 3
        c.batchSize = 16
        let train = InMemoryProvider.synthetic(count: 64, classes: 4, shape: [3, 8, 8], seed: 2)
        let val = InMemoryProvider.synthetic(count: 32, classes: 4, shape: [3, 8, 8], seed: 3)
        let data = RunData(train: train, val: val, test: val)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ffrepro-resume-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }

        let full = try TrainingRun(ctx, config: c, data: data, directory: dir.appendingPathComponent("full"))
        full.log = { _ in }
        full.showProgress = false
        _ = try full.run()

        var short = c
        short.epochs = 1
        let first = try TrainingRun(ctx, config: short, data: data, directory: dir.appendingPathComponent("part"))
        first.log = { _ in }
        first.showProgress = false
        _ = try first.run()
        let resumed = try TrainingRun(ctx, config: c, data: data, directory: dir.appendingPathComponent("part"),
                                      resume: dir.appendingPathComponent("part/last.h5"))
        resumed.log = { _ in }
        resumed.showProgress = false
        _ = try resumed.run()

        let a = try Checkpoint.read(from: dir.appendingPathComponent("full/last.h5"))
        let b = try Checkpoint.read(from: dir.appendingPathComponent("part/last.h5"))
        XCTAssertEqual(a.tensors.map(\.0), b.tensors.map(\.0))
        for ((name, x), (_, y)) in zip(a.tensors, b.tensors) {
            XCTAssertEqual(x.array, y.array, "\(name) differs between a full run and a resumed one")
        }
    }

    func testNaNLossStopsNamingTheLayer() throws {
        let net = try Network(ctx, config: tinyConfig(), inputShape: [3, 8, 8], classes: 3)
        let x = Tensor(filled: .nan, shape: [2, 3, 8, 8])
        let trainer = Trainer(ctx, net: net)
        var t = Tally(units: 2)
        XCTAssertThrowsError(try trainer.trainStep(Batch(images: x, labels: [0, 1]), lr: 1e-3, tally: &t)) { e in
            XCTAssertTrue("\(e)".contains("layer 1"), "\(e)")
        }
    }
}
