import FFEngine
import Foundation
import XCTest

/// Whole-model checks against tensors produced by an independent PyTorch implementation
/// (tools/golden/make_golden.py -> Fixtures/golden.h5): per-layer losses and logits of two
/// layer-local training steps, the head's, and every parameter after both AdamW steps.
final class GoldenTests: XCTestCase {
    struct Case {
        let file: HDF5File
        let name: String
        let config: RecipeConfig
        let inputShape: [Int]
        let classes: Int
    }

    static var fixture: URL {
        Bundle.module.url(forResource: "Fixtures/golden", withExtension: "h5")
            ?? Bundle.module.resourceURL!.appendingPathComponent("Fixtures/golden.h5")
    }

    func loadCase(_ name: String) throws -> Case {
        let file = try HDF5File(GoldenTests.fixture)
        let json = try file.stringAttribute("config", on: name)
        let cfg = try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any]
        let channels = cfg["channels"] as! [Int]
        let classes = cfg["classes"] as! Int
        let lr = cfg["lr"] as! Double
        var c = RecipeConfig(name: "golden-\(name)", paper: "test", summary: "golden", training: "layer-local",
                             dataset: "none", arch: "custom", lr: lr, minLr: lr, weightDecay: cfg["weight_decay"] as! Double,
                             epochs: 1, batchSize: cfg["batch"] as! Int)
        c.channels = channels
        c.poolAfter = cfg["pool_after"] as? [Int] ?? []
        c.alpha = cfg["alpha"] as! Double
        c.pred = cfg["head"] as! String
        c.fusionBatchNorm = cfg["head_bn"] as! Bool
        if let t = cfg["temperature_init"] as? Double {
            c.learnTemperature = true
            c.temperatureInit = t
        }
        return Case(file: file, name: name, config: c, inputShape: cfg["input_shape"] as! [Int], classes: classes)
    }

    func tensor(_ c: Case, _ path: String) throws -> Tensor {
        let d = try c.file.dataset(c.name + "/" + path)
        let t = Tensor(uninitialized: d.shape)
        try d.read(into: t.buffer)
        return t
    }

    func scalar(_ c: Case, _ path: String) throws -> Double {
        try c.file.dataset(c.name + "/" + path).read(as: Double.self)[0]
    }

    /// max |a - b| <= tol * max(max |b|, 1e-3): relative to the tensor's scale, so
    /// elements near zero do not demand impossible precision.
    func assertTensorClose(_ a: Tensor, _ b: Tensor, tol: Double = 1e-4, _ what: String,
                           file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.shape, b.shape, what, file: file, line: line)
        guard a.shape == b.shape else { return }
        var maxErr = 0.0, scale = 1e-3
        for i in 0..<a.count {
            maxErr = max(maxErr, abs(Double(a[i]) - Double(b[i])))
            scale = max(scale, abs(Double(b[i])))
        }
        XCTAssertLessThanOrEqual(maxErr / scale, tol, "\(what): max error \(maxErr) at scale \(scale)", file: file, line: line)
    }

    func runCase(_ name: String) throws {
        let c = try loadCase(name)
        let ctx = ComputeContext(threads: 2)
        let net = try Network(ctx, config: c.config, inputShape: c.inputShape, classes: c.classes)
        XCTAssertEqual(net.partitions, (try JSONSerialization.jsonObject(
            with: Data(try c.file.stringAttribute("config", on: name).utf8)) as! [String: Any])["partitions"] as! [Int],
            "partition factors P_l")
        for p in net.parameters { p.value.copy(from: try tensor(c, "init/" + p.name)) }
        for b in net.buffers { b.value.copy(from: try tensor(c, "init/" + b.name)) }
        let trainer = Trainer(ctx, net: net)
        for step in 0..<2 {
            var seen: [String: (Tensor, Double)] = [:]
            trainer.observer = { name, logits, loss in seen[name] = (logits.copy(), loss) }
            let x = try tensor(c, "step\(step)/x")
            let labels = try c.file.dataset("\(name)/step\(step)/labels").read(as: Int32.self)
            var tally = Tally(units: net.units.count)
            try trainer.trainStep(Batch(images: x, labels: labels), lr: c.config.lr, tally: &tally)
            for i in net.units.indices {
                let (logits, loss) = try XCTUnwrap(seen["units.\(i)"])
                assertTensorClose(logits, try tensor(c, "step\(step)/units.\(i).logits"), "\(name) step \(step) layer \(i + 1) logits")
                XCTAssertEqual(loss, try scalar(c, "step\(step)/units.\(i).loss"), accuracy: 1e-4 * max(1, loss),
                               "\(name) step \(step) layer \(i + 1) loss")
            }
            let (hl, hloss) = try XCTUnwrap(seen["head"])
            assertTensorClose(hl, try tensor(c, "step\(step)/head.logits"), "\(name) step \(step) head logits")
            XCTAssertEqual(hloss, try scalar(c, "step\(step)/head.loss"), accuracy: 1e-4 * max(1, hloss), "\(name) head loss")
        }
        let finals = try c.file.datasetNames().filter { $0.hasPrefix(name + "/final/") }
        XCTAssertFalse(finals.isEmpty)
        let byName = Dictionary(uniqueKeysWithValues: (net.parameters.map { ($0.name, $0.value) }
            + net.buffers.map { ($0.name, $0.value) }))
        for path in finals {
            let pname = String(path.dropFirst((name + "/final/").count))
            let mine = try XCTUnwrap(byName[pname], "model has no \(pname)")
            assertTensorClose(mine, try tensor(c, "final/" + pname), "\(name) \(pname) after two steps")
        }
    }

    func testASGEFusionTwoSteps() throws { try runCase("asge") }
    func testDTGFFTemperatureAndFusedBatchNormTwoSteps() throws { try runCase("dtgff") }
    func testAdaptivePatchesLastPredTwoSteps() throws { try runCase("adaptive") }
}
