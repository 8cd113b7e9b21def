import FFEngine
import Foundation
import TestScratch
import XCTest

/// Schema v2 of metrics, results and checkpoint attributes; the paper comparison; whole-run
/// ETA; run folders; and the forward `predict` uses.
final class ResultsTests: XCTestCase {
    let ctx = ComputeContext(threads: 1)

    func record(_ epoch: Int, val: Double) -> EpochRecord {
        EpochRecord(epoch: epoch, lr: 1e-3, seconds: 2, imagesPerSecond: 50, trainUnitLoss: [1.5, 1.25],
                    trainUnitAccuracy: [1.0 / 3, 0.5], trainHeadLoss: nil, trainHeadAccuracy: nil,
                    valUnitAccuracy: [0.7, 0.81], valHeadAccuracy: nil, valHeadTop5: nil, valSelected: val,
                    bestLayer: 2, temperatures: nil)
    }

    func testEpochRecordsArePercentWithNullsAndReadBackRankingAlike() throws {
        let r = record(3, val: 7.0 / 9)
        let json = try JSONSerialization.jsonObject(with: EpochRecord.encoder.encode(r)) as! [String: Any]
        XCTAssertEqual(json["val_readout_acc_pct"] as? [Double], [70, 81])
        XCTAssertEqual(json["train_readout_acc_pct"] as? [Double], [33.333333, 50])
        XCTAssertEqual(json["val_selected_pct"] as? Double, 77.777778)
        XCTAssertTrue(json["val_head_acc_pct"] is NSNull, "not measured is null, not absent")
        XCTAssertTrue(json.keys.allSatisfy { !$0.contains("accuracy") }, "\(json.keys)")
        let back = try EpochRecord.decoder.decode(EpochRecord.self, from: EpochRecord.encoder.encode(r))
        XCTAssertEqual(back.selectionRank, r.selectionRank, "a resumed run ranks epochs as the uninterrupted one")
        XCTAssertEqual(back.valUnitAccuracy[1], 0.81, accuracy: 1e-12)
        // Files of earlier versions (fractions, other keys) still read.
        let legacy = #"{"epoch":1,"lr":0.001,"seconds":2,"images_per_second":50,"train_unit_loss":[1.5],"#
            + #""train_unit_accuracy":[0.5],"val_unit_accuracy":[0.75],"val_selected":0.75,"best_layer":1}"#
        let old = try EpochRecord.decoder.decode(EpochRecord.self, from: Data(legacy.utf8))
        XCTAssertEqual(old.valUnitAccuracy, [0.75])
        XCTAssertEqual(old.bestLayer, 1)
    }

    func testResultsRecordFields() throws {
        var c = try Recipes.named("asge-fmnist")
        c.epochs = 100
        var tally = Tally(units: 2)
        tally.count = 10
        tally.unitCorrect = [6, 9]
        tally.unitTop5 = [10, 10]
        tally.headCorrect = 8
        tally.headTop5 = 10
        let d = DatasetInfo(name: "fashion-mnist", directory: "/d", fingerprint: "f", imageSize: [28, 28, 1],
                            channelMean: [0.3], channelStd: [0.35], labelKey: "labels", classNames: ["a", "b"],
                            official: true, splitCounts: ["test": 10])
        let r = ResultsRecord(kind: "run", config: c, dataset: d, classes: 10, split: "test", tally: tally,
                              readoutLabels: ["layer 1", "layer 2"], bestReadout: 1, checkpoint: "best.h5",
                              checkpointEpoch: 90, history: [record(90, val: 0.9), record(100, val: 0.8)], epochsTrained: 100)
        XCTAssertEqual(r.top1Pct, 80)
        XCTAssertEqual(r.headTop1Pct, 80)
        XCTAssertEqual(r.headTop5Pct, 100)
        XCTAssertEqual(r.bestPredReadout, 1, "the readout chosen on validation, not the best on test")
        XCTAssertEqual(r.bestPredTop1Pct, 60)
        XCTAssertEqual(r.bestPredTop5Pct, 100)
        XCTAssertEqual(r.bestEpoch, 90)
        XCTAssertEqual(r.bestValPct, 90)
        XCTAssertEqual(r.configHash, RunCheckpoint.configHash(c))
        XCTAssertEqual(r.paper?.comparable, true, r.paper?.whyNot ?? "")
        XCTAssertEqual(PaperComparison.line(r),
                       "comparable with the paper: Fusion Pred = 80.00% vs reported 93.41% (ASGE Table 4 (VGG8))")
        let json = try JSONSerialization.jsonObject(with: r.encoded()) as! [String: Any]
        XCTAssertEqual(json["schema_version"] as? Int, 2)
        XCTAssertTrue((json["paper"] as? [String: Any])?["why_not"] is NSNull)
        XCTAssertTrue(json["top5_pct"] is Double)
        let url = Scratch.directory("results").appendingPathComponent("results.json")
        try r.write(to: url)
        XCTAssertEqual(try ResultsRecord.read(url), r)

        // Best Pred recipes have no head: null, and the predictor is the chosen readout.
        var best = c
        best.pred = "best"
        let b = ResultsRecord(kind: "eval", config: best, dataset: d, classes: 10, split: "test", tally: tally, readoutLabels: [],
                              bestReadout: 2, checkpoint: nil, checkpointEpoch: nil, history: [], epochsTrained: 100)
        XCTAssertNil(b.headTop1Pct)
        XCTAssertEqual(b.top1Pct, 90)
        XCTAssertEqual(b.bestPredLabel, "readout 2")
        let bj = try JSONSerialization.jsonObject(with: b.encoded()) as! [String: Any]
        XCTAssertTrue(bj["head_top1_pct"] is NSNull)
        // Top-5 of five classes or fewer is 100 % by definition: not reported.
        let few = ResultsRecord(kind: "eval", config: c, dataset: d, classes: 4, split: "test", tally: tally,
                                readoutLabels: [], bestReadout: 1, checkpoint: nil, checkpointEpoch: nil, history: [],
                                epochsTrained: 1)
        XCTAssertNil(few.top5Pct)
        XCTAssertNil(few.readouts[0].top5Pct)
        XCTAssertEqual(few.top1Pct, 80)
    }

    func testPaperComparisonOnlyForThePapersSetting() throws {
        let recipe = try Recipes.named("asge-cifar10")
        let official = DatasetInfo(name: "cifar10", directory: "/d", fingerprint: "f", imageSize: [32, 32, 3],
                                   channelMean: [0.5, 0.5, 0.5], channelStd: [0.25, 0.25, 0.25], labelKey: "labels",
                                   classNames: [], official: true, splitCounts: ["test": 10000])
        func why(_ c: RecipeConfig, _ d: DatasetInfo? = nil, epochs: Int = 400, split: String? = "test",
                 images: Int? = 10000) -> String? {
            PaperComparison.check(config: c, dataset: d ?? official, epochsTrained: epochs, split: split, images: images)?.whyNot
        }
        var seeded = recipe
        seeded.seed = 3
        XCTAssertNil(why(seeded), "another seed is the same setting")
        XCTAssertEqual(why(recipe, epochs: 1), "trained 1 of the paper's 400 epochs")
        XCTAssertEqual(why(recipe, images: 2000), "tested on 2000 of 10000 test images")
        XCTAssertEqual(why(recipe, split: "val"), "evaluated on val, not test")
        XCTAssertEqual(why(recipe, split: nil), "nothing was tested (the dataset has no test split)")
        var folder = official
        folder.official = false
        XCTAssertTrue(why(recipe, folder)?.contains("an image folder carrying the name") ?? false)
        var other = recipe
        other.dataset = "shapes"
        XCTAssertTrue(why(other)?.hasPrefix("dataset 'shapes' is not the paper's cifar10") ?? false)
        var changed = recipe
        changed.alpha = 2
        changed.subset = 100
        XCTAssertEqual(why(changed), "trained on a subset of 100 images; config differs from the recipe in alpha")
        var none = recipe
        none.paperTop1 = nil
        XCTAssertNil(PaperComparison.check(config: none, dataset: official, epochsTrained: 400, split: "test", images: 10000))
    }

    func testPairedTTestAndStudentT() throws {
        // Two-sided critical values of Student's t (tables): t_{0.975, 4} = 2.776445, t_{0.995, 2} = 9.924843.
        XCTAssertEqual(Stats.studentTwoSidedP(2.776445, degreesOfFreedom: 4), 0.05, accuracy: 1e-6)
        XCTAssertEqual(Stats.studentTwoSidedP(9.924843, degreesOfFreedom: 2), 0.01, accuracy: 1e-6)
        XCTAssertEqual(Stats.studentTwoSidedP(0, degreesOfFreedom: 7), 1, accuracy: 1e-12)
        XCTAssertEqual(Stats.studentTwoSidedP(1, degreesOfFreedom: 1), 0.5, accuracy: 1e-12, "Cauchy: P(|T|>1) = 1/2")
        let t = try XCTUnwrap(Stats.pairedTTest([1, 2, 3], [2, 4, 6]))
        XCTAssertEqual(t.meanDifference, 2)
        XCTAssertEqual(t.stdDifference, 1)
        XCTAssertEqual(t.t, 2 * 3.0.squareRoot(), accuracy: 1e-12)
        XCTAssertEqual(t.degreesOfFreedom, 2)
        XCTAssertEqual(t.p, Stats.studentTwoSidedP(t.t, degreesOfFreedom: 2))
        XCTAssertEqual(Stats.pairedTTest([1, 2], [1, 2])?.p, 1)
        XCTAssertNil(Stats.pairedTTest([1], [2]))
        XCTAssertEqual(Stats.std([2, 4, 4, 4, 5, 5, 7, 9])!, (32.0 / 7).squareRoot(), accuracy: 1e-12)
    }

    func testWholeRunETA() {
        var clock = RunClock(totalEpochs: 10)
        // Before any epoch finished: the current epoch's projection stands for all.
        XCTAssertEqual(clock.remaining(inEpoch: 0, fraction: 0.25, elapsed: 5)!, 15 + 9 * 20, accuracy: 1e-9)
        XCTAssertNil(clock.remaining(inEpoch: 0, fraction: 0, elapsed: 1))
        clock.finished(30)
        clock.finished(10)
        XCTAssertEqual(clock.remaining(afterEpoch: 2)!, 8 * 20, accuracy: 1e-9)
        XCTAssertEqual(clock.remaining(inEpoch: 2, fraction: 0.5, elapsed: 12)!, 12 + 7 * 20, accuracy: 1e-9)
        XCTAssertNil(clock.remaining(afterEpoch: 10))
    }

    func tinyRun(_ dir: URL, epochs: Int = 1, resume: URL? = nil) throws -> (TrainingRun, [String]) {
        var c = RecipeConfig(name: "tiny", paper: "test", summary: "tiny", training: "layer-local", dataset: "none",
                             arch: "custom", lr: 1e-3, minLr: 0, weightDecay: 0, epochs: epochs, batchSize: 8)
        c.channels = [4, 6]
        c.poolAfter = [1]
        let train = InMemoryProvider.synthetic(count: 32, classes: 3, shape: [3, 8, 8], seed: 1)
        let val = InMemoryProvider.synthetic(count: 16, classes: 3, shape: [3, 8, 8], seed: 2)
        let run = try TrainingRun(ctx, config: c, data: RunData(train: train, val: val, test: val), directory: dir,
                                  resume: resume)
        var lines: [String] = []
        run.log = { lines.append($0) }
        run.showProgress = false
        return (run, lines)
    }

    func testEstimateLineAndRunFolderRules() throws {
        let dir = Scratch.directory("run")
        var (run, _) = try tinyRun(dir)
        var lines: [String] = []
        run.log = { lines.append($0) }
        run.estimateThreshold = 0
        let result = try run.run()
        XCTAssertEqual(lines.filter { $0.hasPrefix("estimate: 1 epochs x 32 images at ") }.count, 1, "\(lines)")
        XCTAssertEqual(result.record?.kind, "run")
        // Another run into the same folder is refused and changes nothing.
        let before = try Data(contentsOf: dir.appendingPathComponent("last.h5"))
        (run, _) = try tinyRun(dir)
        XCTAssertThrowsError(try run.run()) { e in XCTAssertTrue("\(e)".contains("holds another run"), "\(e)") }
        XCTAssertEqual(try Data(contentsOf: dir.appendingPathComponent("last.h5")), before)
        // Continuing it in place (same config, more epochs) is allowed.
        (run, _) = try tinyRun(dir, epochs: 2, resume: dir.appendingPathComponent("last.h5"))
        XCTAssertEqual(try run.run().epochsTrained, 2)

        let root = Scratch.directory("root")
        let date = Date(timeIntervalSince1970: 1_700_000_000)
        let a = try RunFolder.fresh(recipe: "r", tag: "x", root: root, date: date)
        try FileManager.default.createDirectory(at: a.url, withIntermediateDirectories: true)
        let b = try RunFolder.fresh(recipe: "r", tag: "x", root: root, date: date)
        XCTAssertNotEqual(a.url, b.url)
        XCTAssertEqual(b.url.lastPathComponent, a.url.lastPathComponent + "-2")
        XCTAssertThrowsError(try RunFolder.fresh(recipe: "r", tag: "a/b", root: root))
    }

    func testCheckpointAttributesAreTypedAndCarryTheDataset() throws {
        let dir = Scratch.directory("typed")
        let (run, _) = try tinyRun(dir)
        _ = try run.run()
        let url = dir.appendingPathComponent("best.h5")
        let numbers = try Checkpoint.readNumbers(from: url)
        XCTAssertEqual(numbers["epoch"], .int(1))
        XCTAssertEqual(numbers["classes"], .int(3))
        XCTAssertEqual(numbers["input_shape"], .ints([3, 8, 8]))
        XCTAssertNil(try Checkpoint.readAttributes(from: url)["epoch"], "numbers are not strings any more")
        let info = try RunCheckpoint.describe(url)
        XCTAssertEqual(info.epoch, 1)
        XCTAssertNil(info.dataset, "in-memory data has no dataset description")
        XCTAssertEqual(info.classNames, ["class 0", "class 1", "class 2"])

        // With a dataset: names, statistics and the fingerprint travel in the checkpoint.
        let d = DatasetInfo(name: "toy", directory: "/x", fingerprint: "abc", imageSize: [8, 8, 3],
                            channelMean: [0.1, 0.2, 0.3], channelStd: [0.4, 0.5, 0.6], labelKey: "labels",
                            classNames: ["a", "b", "c"], official: false, splitCounts: ["train": 32])
        let net = try Network(ctx, config: info.config, inputShape: [3, 8, 8], classes: 3)
        let trainer = Trainer(ctx, net: net)
        let with = dir.appendingPathComponent("with.h5")
        try RunCheckpoint.save(trainer, state: RunState(epoch: 1, step: 9, history: info.history), dataset: d, to: with)
        let back = try RunCheckpoint.describe(with)
        XCTAssertEqual(back.dataset, d)
        XCTAssertEqual(back.step, 9)
        XCTAssertEqual(try Checkpoint.readNumbers(from: with)["channel_std"], .doubles([0.4, 0.5, 0.6]))

        // Checkpoints before schema v2 kept numbers as strings; they still describe.
        var old = try Checkpoint.read(from: url)
        old.numbers = [:]
        old.attributes["epoch"] = "1"
        old.attributes["step"] = "4"
        old.attributes["classes"] = "3"
        old.attributes["input_shape"] = "3,8,8"
        let legacy = dir.appendingPathComponent("legacy.h5")
        try old.write(to: legacy)
        let l = try RunCheckpoint.describe(legacy)
        XCTAssertEqual([l.epoch, l.step, l.classes], [1, 4, 3])
        XCTAssertEqual(l.inputShape, [3, 8, 8])
    }

    /// `repro predict` uses Trainer.scores; it must predict what evaluation counts.
    func testScoresAgreeWithEvaluation() throws {
        for pred in ["fusion", "best", "goodness-mean"] {
            var c = RecipeConfig(name: "t", paper: "test", summary: "t", training: "layer-local", dataset: "none",
                                 arch: "custom", lr: 1e-3, minLr: 0, weightDecay: 0, epochs: 1, batchSize: 8)
            c.channels = [4, 6, 6]
            c.poolAfter = [1]
            c.pred = pred
            if pred == "goodness-mean" { c.localLoss = "class-goodness" }
            let net = try Network(ctx, config: c, inputShape: [3, 8, 8], classes: 4)
            let trainer = Trainer(ctx, net: net)
            let data = InMemoryProvider.synthetic(count: 24, classes: 4, shape: [3, 8, 8], seed: 5)
            var tally = Tally(units: net.readouts.count)
            for b in try data.batches(epoch: 0, batchSize: 8).collect() { try trainer.trainStep(b, lr: 1e-2, tally: &tally) }
            let batch = try data.batches(epoch: 0, batchSize: 24).collect()[0]
            var eval = Tally(units: net.readouts.count)
            trainer.evaluateBatch(batch, tally: &eval)
            let s = trainer.scores(batch.images)
            func correct(_ t: Tensor) -> Int {
                let k = t.shape[1]
                return (0..<batch.count).filter { i in
                    let row = (0..<k).map { t[i * k + $0] }
                    return Int32(row.indices.max { row[$0] < row[$1] }!) == batch.labels[i]
                }.count
            }
            XCTAssertEqual(s.readouts.map(correct), eval.unitCorrect, pred)
            if pred == "best" {
                XCTAssertNil(s.predictor)
            } else {
                XCTAssertEqual(correct(s.predictor!), eval.headCorrect, pred)
            }
        }
    }
}

final class EventFileTests: XCTestCase {
    func testCRC32CAndProtoRoundTrip() throws {
        XCTAssertEqual(EventWriterProbe.crc32c(Array("123456789".utf8)), 0xE306_9283, "the CRC-32C check value")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ffrepro-events-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let w = try EventWriter(directory: dir)
        try w.scalars([("a", 1.5), ("b/c", -2)], step: 7)
        try w.scalar("a", 3, step: 300)
        let back = try EventWriter.readScalars(w.url)
        XCTAssertEqual(back.map(\.tag), ["a", "b/c", "a"])
        XCTAssertEqual(back.map(\.step), [7, 7, 300])
        XCTAssertEqual(back.map(\.value), [1.5, -2, 3])
    }
}

final class TemperatureRateTests: XCTestCase {
    /// `temperature_lr_scale` gives tau its own learning rate: AdamW's first step moves a
    /// parameter by about lr (its update is normalised), so tau moves 100x further at scale 100,
    /// and every other parameter exactly as at scale 1.
    func testTemperatureHasItsOwnLearningRate() throws {
        let ctx = ComputeContext(threads: 1)
        func oneStep(_ scale: Double) throws -> (tau: [Double], weights: [Float]) {
            var c = RecipeConfig(name: "t", paper: "test", summary: "t", training: "layer-local", dataset: "none",
                                 arch: "custom", lr: 1e-3, minLr: 0, weightDecay: 0, epochs: 1, batchSize: 8)
            c.channels = [4, 6]
            c.poolAfter = [1]
            c.learnTemperature = true
            c.temperatureLrScale = scale
            let net = try Network(ctx, config: c, inputShape: [3, 8, 8], classes: 4)
            let trainer = Trainer(ctx, net: net)
            let batch = try InMemoryProvider.synthetic(count: 8, classes: 4, shape: [3, 8, 8], seed: 5)
                .batches(epoch: 0, batchSize: 8).collect()[0]
            var tally = Tally(units: net.readouts.count)
            try trainer.trainStep(batch, lr: 1e-3, tally: &tally)
            let weights = net.parameters.filter { !$0.name.hasSuffix("log_temperature") }.flatMap { $0.value.array }
            return (net.objectives.compactMap(\.temperature).map { Foundation.log($0) }, weights)
        }
        let one = try oneStep(1), hundred = try oneStep(100)
        XCTAssertEqual(one.weights, hundred.weights, "only tau's rate changes")
        XCTAssertEqual(one.tau.count, 2)
        for (a, b) in zip(one.tau, hundred.tau) {
            XCTAssertEqual(abs(a), 1e-3, accuracy: 2e-4)
            XCTAssertEqual(abs(b), 0.1, accuracy: 2e-2)
        }
    }
}

final class OlderRecordTests: XCTestCase {
    /// A results record written before a config field existed still reads (the field takes
    /// its default), as config.json and checkpoints do: `repro table` and `repro plot` of
    /// older runs keep working.
    func testRecordWithoutANewerConfigFieldReads() throws {
        let c = try Recipes.named("asge-fmnist")
        let record = ResultsRecord(kind: "run", config: c, dataset: nil, classes: 10, split: nil, tally: nil,
                                   readoutLabels: [], bestReadout: nil, checkpoint: nil, checkpointEpoch: nil,
                                   history: [], epochsTrained: 1)
        var object = try XCTUnwrap(try JSONSerialization.jsonObject(with: record.encoded()) as? [String: Any])
        var config = try XCTUnwrap(object["config"] as? [String: Any])
        config.removeValue(forKey: "temperature_lr_scale")
        object["config"] = config
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ffrepro-old-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("results.json")
        try JSONSerialization.data(withJSONObject: object).write(to: url)
        let back = try ResultsRecord.read(url)
        XCTAssertEqual(back.config, c)
    }
}
