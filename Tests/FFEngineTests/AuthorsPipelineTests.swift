import FFEngine
import Foundation
import TestScratch
import XCTest

/// The input pipeline and model pieces the ASGE recipes take from the authors' released
/// code: resize of 28x28 sets to 32x32, per-sample RMS scaling of the input and between
/// layers, dropout, Kaiming-normal initialisation, the per-layer Fusion classifier, and
/// the training subset that tools/fidelity/run_authors.py reproduces in Python.
final class AuthorsPipelineTests: XCTestCase {
    let ctx = ComputeContext(threads: 2)

    func loader(_ o: LoaderOptions) throws -> ShardLoader {
        try ShardLoader(directory: LoaderTests.dir, split: "train", options: o)
    }

    /// PIL's bilinear enlargement of one channel (support 1, pixel centres, edge weights
    /// renormalised), rounded to uint8: the reference for the loader's resize.
    func pilBilinear(_ src: [Double], _ s: Int, _ d: Int) -> [Double] {
        func weights(_ o: Int) -> [(Int, Double)] {
            let center = (Double(o) + 0.5) * Double(s) / Double(d)
            var w: [(Int, Double)] = []
            for i in 0..<s {
                let t = 1 - abs(Double(i) + 0.5 - center)
                if t > 0 { w.append((i, t)) }
            }
            let total = w.reduce(0) { $0 + $1.1 }
            return w.map { ($0.0, $0.1 / total) }
        }
        var out = [Double](repeating: 0, count: d * d)
        for y in 0..<d {
            for x in 0..<d {
                var v = 0.0
                for (iy, wy) in weights(y) { for (ix, wx) in weights(x) { v += wy * wx * src[iy * s + ix] } }
                out[y * d + x] = v.rounded()
            }
        }
        return out
    }

    func testResizeToLargerSideIsBilinearAndScalingIsPerSampleRMS() throws {
        let plain = try loader(LoaderOptions(shuffle: false, normalize: false))
        let big = try loader(LoaderOptions(shuffle: false, resize: 11, scaling: .unit))
        XCTAssertEqual(big.sampleShape, [3, 11, 11])
        let a = try plain.batch(epoch: 0, index: 0, batchSize: 2), b = try big.batch(epoch: 0, index: 0, batchSize: 2)
        for ch in 0..<3 {
            let src = (0..<64).map { Double(a.images[ch * 64 + $0]) * 255 }
            let ref = pilBilinear(src, 8, 11)
            let got = (0..<121).map { Double(b.images[ch * 121 + $0]) * 255 }
            for i in 0..<121 { XCTAssertEqual(got[i], ref[i], accuracy: 1.01, "channel \(ch) pixel \(i)") }
        }
        let rms = try loader(LoaderOptions(shuffle: false, resize: 11, scaling: .rms(eps: 1.9287498e-22)))
        let r = try rms.batch(epoch: 0, index: 0, batchSize: 2)
        for s in 0..<2 {
            let u = (0..<363).map { Double(b.images[s * 363 + $0]) }
            let scale = (u.reduce(0) { $0 + $1 * $1 } / 363).squareRoot()
            for i in stride(from: 0, to: 363, by: 17) {
                XCTAssertEqual(Double(r.images[s * 363 + i]), u[i] / scale, accuracy: 1e-5)
            }
        }
    }

    func testColorAugmentationIsDeterministicAndOnlyInTraining() throws {
        let color = ColorAugmentation(brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1, grayscale: 0.2)
        let o = LoaderOptions(seed: 4, augmentation: .randomCrop(size: 8, padding: 2, flip: true), color: color)
        let x = try loader(o).batch(epoch: 1, index: 0, batchSize: 16)
        let y = try loader(o).batch(epoch: 1, index: 0, batchSize: 16)
        XCTAssertEqual(x.images.array, y.images.array)
        let plain = try loader(LoaderOptions(seed: 4, augmentation: .randomCrop(size: 8, padding: 2, flip: true)))
            .batch(epoch: 1, index: 0, batchSize: 16)
        XCTAssertNotEqual(x.images.array, plain.images.array)
    }

    /// tools/fidelity/run_authors.py reimplements ShardLoader.subsetRows in Python; the two
    /// printed these rows for the equivalence runs (total 50000, count 10000, seed 0).
    func testSubsetRowsMatchTheFidelityShim() {
        let rows = ShardLoader.subsetRows(total: 50_000, count: 10_000, seed: 0)
        XCTAssertEqual(Array(rows.prefix(10)), [10, 11, 20, 28, 32, 38, 54, 59, 62, 64])
        XCTAssertEqual(Array(rows.suffix(5)), [49990, 49992, 49993, 49994, 49998])
    }

    func testASGERecipesFollowTheAuthorsCode() throws {
        let c = try Recipes.named("asge-fmnist")
        XCTAssertEqual(c.poolAfter, [2, 4, 5, 6])
        XCTAssertEqual(c.pool, .rms, "the paper's stated pooling")
        XCTAssertEqual(try Recipes.named("asge-fmnist-code").pool, .avg, "the released code's pooling")
        XCTAssertEqual(c.resize, 32)
        XCTAssertEqual(c.augment, "flip")
        XCTAssertEqual(try Recipes.named("asge-mnist").augment, "none")
        XCTAssertEqual(try Recipes.named("asge-cifar10").colorJitter, [0.4, 0.4, 0.4, 0.1])
        XCTAssertEqual(try Recipes.named("asge-cifar10").randomGrayscale, 0.2)
        let net = try Network(ctx, config: c, inputShape: [1, 32, 32], classes: 10)
        XCTAssertEqual(net.units.map { $0.tapShape[1] }, [32, 32, 16, 16, 8, 4, 2])
        XCTAssertEqual(net.partitions, [4, 2, 2, 1, 1, 1, 1])
        XCTAssertEqual(net.units.map { $0.post.layers.map { "\(type(of: $0))" } }[1], ["Pool2d", "Dropout", "RMSScale"])
        XCTAssertEqual(net.units[0].post.layers.map { "\(type(of: $0))" }, ["Dropout", "RMSScale"])
        let head = try XCTUnwrap(net.head)
        XCTAssertEqual(head.point, .output)
        XCTAssertEqual(head.linears.map { $0.weight.shape }, [[10, 256], [10, 256], [10, 512], [10, 512], [10, 512], [10, 512]])
        XCTAssertEqual(head.parameters.map(\.name).prefix(2), ["head.fc.0.weight", "head.fc.0.bias"])
        // Kaiming-normal (fan-in, ReLU gain), zero biases.
        let w = net.units[3].body.parameters[0].value.array.map(Double.init)
        let std = (w.reduce(0) { $0 + $1 * $1 } / Double(w.count)).squareRoot()
        XCTAssertEqual(std, (2.0 / (256 * 9)).squareRoot(), accuracy: 0.01 * std)
        XCTAssertTrue(net.units[3].body.parameters[1].value.array.allSatisfy { $0 == 0 })
        let v11 = try Network(ctx, config: try Recipes.named("asge-vgg11-cifar10"), inputShape: [3, 32, 32], classes: 10)
        XCTAssertEqual(v11.units.map { $0.tapShape[0] }, [128, 256, 256, 512, 512, 512, 512, 512, 512, 512])
        XCTAssertEqual(v11.units.map { $0.tapShape[1] }, [32, 32, 16, 16, 8, 8, 4, 4, 2, 2])
    }

    /// The per-layer Fusion classifier is the sum of one Linear per layer: its logits and
    /// its parameter gradients equal those of the separate Linears.
    func testPerLayerSumHeadIsTheSumOfItsLinears() throws {
        var c = tinyLayerLocalConfig(channels: [4, 6, 5], poolAfter: [1])
        c.fusionHead = "per-layer-sum"
        c.headInput = "output"
        let net = try Network(ctx, config: c, inputShape: [3, 8, 8], classes: 3)
        let head = try XCTUnwrap(net.head)
        XCTAssertEqual(head.widths, [6, 5])
        var rng = RNG(seed: 5, stream: 1)
        let f = Tensor(uninitialized: [4, 11])
        rng.fillNormal(f, std: 1)
        let logits = head.forward(f, .train(cache: true))
        for i in 0..<4 {
            for k in 0..<3 {
                var v = 0.0
                for (l, (lo, w)) in [(0, 6), (6, 5)].enumerated() {
                    let lin = head.linears[l]
                    v += Double(lin.bias!.value[k])
                    for j in 0..<w { v += Double(lin.weight.value[k * w + j]) * Double(f[i * 11 + lo + j]) }
                }
                XCTAssertEqual(Double(logits[i * 3 + k]), v, accuracy: 1e-5)
            }
        }
        let dl = Tensor(uninitialized: [4, 3])
        rng.fillNormal(dl, std: 1)
        for p in head.parameters { Ops.zero(ctx, p.grad) }
        let df = try XCTUnwrap(head.backward(dl, inputGrad: true))
        for i in 0..<4 {
            for j in 0..<11 {
                let (l, col) = j < 6 ? (0, j) : (1, j - 6)
                let w = head.widths[l]
                let expect = (0..<3).reduce(0.0) { $0 + Double(dl[i * 3 + $1]) * Double(head.linears[l].weight.value[$1 * w + col]) }
                XCTAssertEqual(Double(df[i * 11 + j]), expect, accuracy: 1e-5)
            }
        }
        let db = (0..<3).map { k in (0..<4).reduce(0.0) { $0 + Double(dl[$1 * 3 + k]) } }
        for lin in head.linears { for k in 0..<3 { XCTAssertEqual(Double(lin.bias!.grad[k]), db[k], accuracy: 1e-5) } }
    }

    /// Dropout draws are keyed by the step: a resumed run equals the uninterrupted one, and
    /// evaluation is deterministic.
    func testDropoutRunResumesBitIdentically() throws {
        var c = tinyLayerLocalConfig(channels: [4, 8], poolAfter: [1], classes: 4, lr: 1e-3)
        c.epochs = 3
        c.batchSize = 16
        c.dropout = 0.25
        c.interLayerNorm = "rms-scale"
        c.fusionHead = "per-layer-sum"
        c.headInput = "output"
        c.initScheme = "kaiming-normal"
        let train = InMemoryProvider.synthetic(count: 64, classes: 4, shape: [3, 8, 8], seed: 2)
        let val = InMemoryProvider.synthetic(count: 32, classes: 4, shape: [3, 8, 8], seed: 3)
        let data = RunData(train: train, val: val, test: val)
        let dir = Scratch.directory("ffrepro-dropout-resume")
        defer { try? FileManager.default.removeItem(at: dir) }
        func run(_ cfg: RecipeConfig, _ sub: String, resume: Bool = false) throws {
            let r = try TrainingRun(ctx, config: cfg, data: data, directory: dir.appendingPathComponent(sub),
                                    resume: resume ? dir.appendingPathComponent(sub + "/last.h5") : nil)
            r.log = { _ in }
            r.showProgress = false
            _ = try r.run()
        }
        try run(c, "full")
        var short = c
        short.epochs = 1
        try run(short, "part")
        try run(c, "part", resume: true)
        let a = try Checkpoint.read(from: dir.appendingPathComponent("full/last.h5"))
        let b = try Checkpoint.read(from: dir.appendingPathComponent("part/last.h5"))
        for ((name, x), (_, y)) in zip(a.tensors, b.tensors) { XCTAssertEqual(x.array, y.array, name) }
        // Dropout changes training (a run without it ends elsewhere) but not evaluation. Layer 1
        // trains before its dropout; layer 2 reads the dropped-out map.
        var none = c
        none.dropout = 0
        try run(none, "nodrop")
        let n = try Checkpoint.read(from: dir.appendingPathComponent("nodrop/last.h5"))
        XCTAssertEqual(a.tensor("params/units.0.conv.weight")?.array, n.tensor("params/units.0.conv.weight")?.array)
        XCTAssertNotEqual(a.tensor("params/units.1.conv.weight")?.array, n.tensor("params/units.1.conv.weight")?.array)
        let net = try Network(ctx, config: c, inputShape: [3, 8, 8], classes: 4)
        let trainer = Trainer(ctx, net: net)
        let e1 = try trainer.evaluate(val, batchSize: 8), e2 = try trainer.evaluate(val, batchSize: 8)
        XCTAssertEqual(e1.unitCorrect, e2.unitCorrect)
        XCTAssertEqual(e1.headCorrect, e2.headCorrect)
    }
}
