import FFEngine
import Foundation
import TestScratch
import XCTest

/// Per-class accuracy, balanced accuracy, the confusion matrix and the baselines a result
/// must beat; validation loss per epoch (issue 19 item 2).
final class ClassResultsTests: XCTestCase {
    var cli: CLI { CLI(cwd: TrustWorkspace.shared.work) }

    func testEvalGivesPerClassResultsAndBaselines() throws {
        let run = TrustWorkspace.shared.run
        let out = Scratch.directory("classes").appendingPathComponent("eval.json")
        let r = try cli.ok(["eval", "--checkpoint", run.appendingPathComponent("best.h5").path, "--out", out.path])
        XCTAssertTrue(r.out.contains("baselines: majority class '") && r.out.contains("chance 33.33%"), r.out)
        XCTAssertTrue(r.out.contains("balanced accuracy (mean over classes): "), r.out)
        XCTAssertTrue(r.out.contains("per class (rows: true class; columns: predicted"), r.out)
        XCTAssertFalse(r.out.contains("top-5"), "three classes: top-5 is 100 % by definition\n\(r.out)")
        let e = try ResultsRecord.read(out)
        let matrix = try XCTUnwrap(e.confusion)
        XCTAssertEqual(e.classImages, [4, 4, 4])
        XCTAssertEqual(matrix.map { $0.reduce(0, +) }, [4, 4, 4], "rows are the true classes")
        let correct = matrix.indices.reduce(0) { $0 + matrix[$1][$1] }
        XCTAssertEqual(Double(correct) / 12 * 100, try XCTUnwrap(e.top1Pct), accuracy: 1e-4,
                       "the diagonal is the predictor's top-1")
        let recall = try XCTUnwrap(e.perClassTop1Pct).map { try XCTUnwrap($0) }
        XCTAssertEqual(recall, matrix.indices.map { Double(matrix[$0][$0]) / 4 * 100 })
        XCTAssertEqual(try XCTUnwrap(e.balancedTop1Pct), recall.reduce(0, +) / 3, accuracy: 1e-4)
        XCTAssertEqual(e.majorityPct, 33.333333)
        XCTAssertEqual(e.chancePct, 33.333333)
        XCTAssertEqual(e.beatsMajority, e.top1Pct! > 33.333333)
        // The run's own results.json has the same, and its metrics the validation loss.
        let rec = try ResultsRecord.read(run.appendingPathComponent("results.json"))
        XCTAssertEqual(rec.confusion, e.confusion)
        let line = try XCTUnwrap(try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
            .split(separator: "\n").first)
        let epoch = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        XCTAssertEqual((epoch["val_readout_loss"] as? [Double])?.count, 2)
        XCTAssertNotNil(epoch["val_head_loss"] as? Double)
        XCTAssertTrue(try String(contentsOf: run.appendingPathComponent("metrics.csv"), encoding: .utf8)
            .contains(",val_head_loss,val_r1_loss,val_r2_loss"))
    }

    func testTableMarksResultsThatDoNotBeatTheMajority() throws {
        var rec = try ResultsRecord.read(TrustWorkspace.shared.run.appendingPathComponent("results.json"))
        rec.beatsMajority = false
        let file = Scratch.directory("majority").appendingPathComponent("r.json")
        try rec.write(to: file)
        let t = try cli.ok(["table", file.path])
        XCTAssertTrue(t.out.contains("| balanced % | majority % |"), t.out)
        XCTAssertTrue(t.out.contains(" †") && t.out.contains("† not above the majority-class baseline"), t.out)
    }
}
