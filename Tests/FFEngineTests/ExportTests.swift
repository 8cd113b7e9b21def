import FFEngine
import Foundation
import TestScratch
import XCTest

/// `repro export`: the safetensors file holds exactly the model's parameters and buffers
/// with the metadata tools/pytorch needs; the weights-only checkpoint evaluates like the
/// full one.
final class ExportTests: XCTestCase {
    let ctx = ComputeContext(threads: 2)

    func testSafetensorsAndWeightsOnlyRoundTrip() throws {
        var c = tinyLayerLocalConfig(channels: [4, 8, 6], poolAfter: [1, 2], classes: 4, lr: 1e-3)
        c.epochs = 1
        c.batchSize = 16
        c.fusionHead = "per-layer-sum"
        c.headInput = "output"
        c.interLayerNorm = "rms-scale"
        c.dropout = 0.1
        let train = InMemoryProvider.synthetic(count: 48, classes: 4, shape: [3, 8, 8], seed: 2)
        let val = InMemoryProvider.synthetic(count: 32, classes: 4, shape: [3, 8, 8], seed: 3)
        let dir = Scratch.directory("ffrepro-export")
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = try TrainingRun(ctx, config: c, data: RunData(train: train, val: val, test: val),
                                  directory: dir.appendingPathComponent("run"))
        run.log = { _ in }
        run.showProgress = false
        _ = try run.run()
        let best = dir.appendingPathComponent("run/best.h5")
        let full = try Checkpoint.read(from: best)

        let st = dir.appendingPathComponent("m.safetensors")
        let s = try ModelExport.export(checkpoint: best, format: .safetensors, to: st)
        let file = try SafeTensors.read(st)
        let weights = full.tensors.filter { $0.0.hasPrefix("params/") || $0.0.hasPrefix("buffers/") }
        XCTAssertEqual(s.tensors, weights.count)
        XCTAssertEqual(Set(file.entries.map(\.name)), Set(weights.map { String($0.0.split(separator: "/", maxSplits: 1)[1]) }))
        for (name, t) in weights {
            let short = String(name.split(separator: "/", maxSplits: 1)[1])
            let e = try XCTUnwrap(file.entry(short), short)
            XCTAssertEqual(try file.tensor(e).array, t.array, short)
        }
        XCTAssertNotNil(file.entry("head.fc.1.weight"))
        XCTAssertEqual(file.metadata["format"], "ffrepro-export")
        XCTAssertEqual(file.metadata["arch_pool_after"], "[1,2]")
        XCTAssertEqual(try RecipeConfig.fromJSON(file.metadata["config"] ?? "", source: "export"), c)

        // From last.h5 (with the optimizer state; best.h5 is weights-only already).
        let lean = dir.appendingPathComponent("lean.h5")
        let last = best.deletingLastPathComponent().appendingPathComponent("last.h5")
        _ = try ModelExport.export(checkpoint: last, format: .h5, to: lean)
        let l = try Checkpoint.read(from: lean)
        XCTAssertFalse(l.tensors.contains { $0.0.hasPrefix("optim/") })
        XCTAssertLessThan(AtomicFile.size(of: lean)!, AtomicFile.size(of: last)!)
        XCTAssertEqual(Checkpoint.weightsDigest(of: lean), Checkpoint.weightsDigest(of: best), "one epoch: last = best")
        func accuracy(_ url: URL) throws -> Tally {
            let net = try Network(ctx, config: c, inputShape: [3, 8, 8], classes: 4)
            let trainer = Trainer(ctx, net: net)
            try RunCheckpoint.load(url, into: trainer)
            return try trainer.evaluate(val, batchSize: 8)
        }
        let a = try accuracy(best), b = try accuracy(lean)
        XCTAssertEqual(a.unitCorrect, b.unitCorrect)
        XCTAssertEqual(a.headCorrect, b.headCorrect)
        XCTAssertEqual(a.headLoss, b.headLoss)
    }
}

/// A small layer-local VGG-style config (custom channels) for whole-run tests.
func tinyLayerLocalConfig(channels: [Int], poolAfter: [Int], classes: Int = 3, lr: Double = 0) -> RecipeConfig {
    var c = RecipeConfig(name: "tiny", paper: "test", summary: "tiny", training: "layer-local", dataset: "none",
                         arch: "custom", lr: max(lr, 1e-12), minLr: 0, weightDecay: 0, epochs: 1, batchSize: 4)
    c.channels = channels
    c.poolAfter = poolAfter
    c.alpha = 2
    return c
}
