import FFEngine
import Foundation
import XCTest

/// Two BiCovG training steps against an independent PyTorch implementation
/// (tools/golden/make_golden_bicovg.py -> Fixtures/golden_bicovg.h5): covariance goodness
/// with patch energies at every readout, Feature Alignment Layers, Logistic Fusion, one
/// case layer-local and one with hybrid blocks of two layers. Per step every readout's
/// scores and loss and the fusion's; after both AdamW steps every trained tensor.
final class BiCovGGoldenTests: XCTestCase {
    static var fixture: URL {
        Bundle.module.url(forResource: "Fixtures/golden_bicovg", withExtension: "h5")
            ?? Bundle.module.resourceURL!.appendingPathComponent("Fixtures/golden_bicovg.h5")
    }

    func tensor(_ file: HDF5File, _ path: String) throws -> Tensor {
        let d = try file.dataset(path)
        let t = Tensor(uninitialized: d.shape)
        try d.read(into: t.buffer)
        return t
    }

    /// max |a - b| <= tol * max(max |b|, 1e-3).
    func assertClose(_ a: Tensor, _ b: Tensor, tol: Double = 1e-4, _ what: String) {
        XCTAssertEqual(a.shape, b.shape, what)
        guard a.shape == b.shape else { return }
        var err = 0.0, scale = 1e-3
        for i in 0..<a.count {
            err = max(err, abs(Double(a[i]) - Double(b[i])))
            scale = max(scale, abs(Double(b[i])))
        }
        XCTAssertLessThanOrEqual(err / scale, tol, "\(what): max error \(err) at scale \(scale)")
    }

    func runCase(_ name: String) throws {
        let file = try HDF5File(BiCovGGoldenTests.fixture)
        let cfg = try JSONSerialization.jsonObject(with: Data(try file.stringAttribute("config", on: name).utf8))
            as! [String: Any]
        let lr = cfg["lr"] as! Double, classes = cfg["classes"] as! Int, batch = cfg["batch"] as! Int
        var c = RecipeConfig(name: "golden-\(name)", paper: "test", summary: "golden", training: "layer-local",
                             dataset: "none", arch: "custom", lr: lr, minLr: lr, weightDecay: cfg["weight_decay"] as! Double,
                             epochs: 1, batchSize: batch)
        c.channels = cfg["channels"] as? [Int]
        c.poolAfter = cfg["pool_after"] as? [Int]
        c.blocks = cfg["blocks"] as! String
        c.alpha = cfg["alpha"] as! Double
        c.localLoss = "covariance-goodness"
        c.covDirections = cfg["directions"] as! Int
        c.covLevels = cfg["levels"] as! [Int]
        c.fal = true
        c.pred = "goodness-logistic"
        let ctx = ComputeContext(threads: 2)
        let net = try Network(ctx, config: c, inputShape: cfg["input_shape"] as! [Int], classes: classes)
        XCTAssertEqual(net.partitions, cfg["partitions"] as! [Int], "\(name): partition factors")
        XCTAssertEqual(net.readouts.map { net.units[$0].name }, cfg["readouts"] as! [String], "\(name): readouts")

        // The engine's own initial alignment convs (zero) and fusion gates (-2 ... 2) are the script's.
        for p in net.blocks.flatMap(\.entry.parameters) + [net.fusion!.weight] {
            XCTAssertEqual(p.value.array, try tensor(file, "\(name)/init/\(p.name)").array, "\(name): initial \(p.name)")
        }
        let stored = Set(try file.datasetNames().filter { $0.hasPrefix(name + "/init/") })
        for p in net.parameters.map({ ($0.name, $0.value) }) + net.buffers.map({ ($0.name, $0.value) }) {
            XCTAssertTrue(stored.contains("\(name)/init/\(p.0)"), "\(name): the script has no \(p.0)")
            p.1.copy(from: try tensor(file, "\(name)/init/\(p.0)"))
        }
        let trainer = Trainer(ctx, net: net)
        for step in 0..<2 {
            var seen: [String: (Tensor, Double)] = [:]
            trainer.observer = { unit, scores, loss in seen[unit] = (scores.copy(), loss) }
            let x = try tensor(file, "\(name)/step\(step)/x")
            let labels = try file.dataset("\(name)/step\(step)/labels").read(as: Int32.self)
            var tally = Tally(units: net.readouts.count)
            try trainer.trainStep(Batch(images: x, labels: labels), lr: lr, tally: &tally)
            for key in (cfg["readouts"] as! [String]) + ["head"] {
                let (scores, loss) = try XCTUnwrap(seen[key], "\(name): no scores for \(key)")
                assertClose(scores, try tensor(file, "\(name)/step\(step)/\(key).logits"), "\(name) step \(step) \(key) scores")
                let ref = try file.dataset("\(name)/step\(step)/\(key).loss").read(as: Double.self)[0]
                XCTAssertEqual(loss, ref, accuracy: 1e-4 * max(1, ref), "\(name) step \(step) \(key) loss")
            }
        }
        let finals = try file.datasetNames().filter { $0.hasPrefix(name + "/final/") }
        XCTAssertEqual(finals.count, net.parameters.count, "\(name): every trained tensor is compared")
        let byName = Dictionary(uniqueKeysWithValues: net.parameters.map { ($0.name, $0.value) })
        for path in finals {
            let pname = String(path.dropFirst((name + "/final/").count))
            let mine = try XCTUnwrap(byName[pname], "model has no \(pname)")
            assertClose(mine, try tensor(file, path), "\(name) \(pname) after two steps")
        }
    }

    func testLayerLocalCovarianceGoodnessAlignmentAndFusionTwoSteps() throws { try runCase("layerlocal") }
    func testHybridBlocksOfTwoLayersTwoSteps() throws { try runCase("hybrid") }
}
