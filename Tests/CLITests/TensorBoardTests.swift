import FFEngine
import Foundation
import TestScratch
import XCTest

/// `repro run --tensorboard DIR` writes event files TensorBoard reads (issue 19 item 6).
final class TensorBoardTests: XCTestCase {
    var cli: CLI { CLI(cwd: TrustWorkspace.shared.work) }

    func testEventFilesHoldTheEpochScalars() throws {
        let dir = Scratch.directory("tb")
        let run = dir.appendingPathComponent("run"), logs = dir.appendingPathComponent("logs")
        let r = try cli.ok(["run", "asge-cifar10", "--data", "data/toy", "--epochs", "2", "--out", run.path,
                            "--tensorboard", logs.path] + tinyModel)
        XCTAssertTrue(r.out.contains("TensorBoard events: \(logs.path)/run"), r.out)
        let files = try FileManager.default.contentsOfDirectory(atPath: logs.appendingPathComponent("run").path)
        XCTAssertEqual(files.count, 1)
        XCTAssertTrue(files[0].hasPrefix("events.out.tfevents."))
        let file = logs.appendingPathComponent("run/\(files[0])")
        let scalars = try EventWriter.readScalars(file)
        let metrics = try EpochRecord.readLines(run.appendingPathComponent("metrics.jsonl"))
        let val = scalars.filter { $0.tag == "val/predictor_acc_pct" }
        XCTAssertEqual(val.map { Double($0.value) }, metrics.map { 100 * $0.valHeadAccuracy! }.map { Double(Float($0)) })
        XCTAssertEqual(Set(scalars.map(\.tag)).isSuperset(of: ["lr", "train/layer_1_loss", "val/layer_2_acc_pct",
                                                              "val/predictor_loss", "images_per_s"]), true, "\(Set(scalars.map(\.tag)))")
        // Every record's CRC is checked: one flipped byte is refused.
        var bytes = [UInt8](try Data(contentsOf: file))
        bytes[bytes.count - 6] ^= 0x40
        let broken = dir.appendingPathComponent("broken")
        try Data(bytes).write(to: broken)
        XCTAssertThrowsError(try EventWriter.readScalars(broken))
        try pythonReadBack(logs.appendingPathComponent("run"), expect: val.count)
    }

    /// TensorBoard's own reader, where the package is installed ($FFREPRO_PYTHON or python3).
    func pythonReadBack(_ dir: URL, expect: Int) throws {
        let py = ProcessInfo.processInfo.environment["FFREPRO_PYTHON"] ?? "python3"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [py, "-c", """
            import sys
            from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
            ea = EventAccumulator(sys.argv[1]); ea.Reload()
            print(len(ea.Scalars('val/predictor_acc_pct')))
            """, dir.path]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch { return }
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { return }  // no tensorboard package here: the Swift reader above checked
        XCTAssertEqual(text.trimmingCharacters(in: .whitespacesAndNewlines), "\(expect)")
    }
}
