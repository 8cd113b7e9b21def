import FFEngine
import Foundation
import TestScratch
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Hostile or odd inputs get a clear error, never a crash, a hang or a silent default
/// (issue 18 items 4, 5, 7, 8).
final class HostileInputTests: XCTestCase {
    var cli: CLI { CLI(cwd: TrustWorkspace.shared.work) }
    var best: URL { TrustWorkspace.shared.run.appendingPathComponent("best.h5") }

    func message(_ body: () throws -> Void) -> String {
        do { try body(); return "no error" } catch { return "\(error)" }
    }

    /// A copy of the run's best.h5 with its attributes edited as a hostile user would.
    func edited(_ name: String, _ edit: (inout Checkpoint) -> Void) throws -> URL {
        var ckpt = try Checkpoint.read(from: best)
        edit(&ckpt)
        let url = Scratch.directory("edited").appendingPathComponent(name)
        try ckpt.write(to: url)
        return url
    }

    func testSafetensorsHeadersCannotAskForUnboundedMemory() throws {
        let dir = Scratch.directory("st")
        func file(_ name: String, header: Data) throws -> URL {
            var d = Data()
            withUnsafeBytes(of: UInt64(header.count).littleEndian) { d.append(contentsOf: $0) }
            d.append(header)
            let url = dir.appendingPathComponent(name)
            try d.write(to: url)
            return url
        }
        // 150,000 zero-size entries (the crash was 1.6 M): refused before JSON parsing.
        var many = "{"
        for i in 0..<150_000 { many += "\"t\(i)\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}," }
        many.removeLast()
        many += "}"
        let text = message { _ = try SafeTensors.read(try file("many.safetensors", header: Data(many.utf8))) }
        XCTAssertTrue(text.contains("lists 150000 tensors, more than the 100000"), text)
        // A header longer than 16 MiB is refused by its length field.
        let long = try file("long.safetensors", header: Data(repeating: 0x20, count: (16 << 20) + 2))
        XCTAssertTrue(message { _ = try SafeTensors.read(long) }.contains("header length"))
        // `{}` and a file whose names match nothing: --init-from refuses instead of training from scratch.
        let empty = try file("empty.safetensors", header: Data("{}".utf8))
        let r = try cli.run(["run", "asge-cifar10", "--data", "data/toy", "--epochs", "1", "--init-from", empty.path,
                             "--out", dir.appendingPathComponent("r1").path] + tinyModel)
        XCTAssertEqual(r.status, 65, r.all)
        XCTAssertTrue(r.err.contains("has no tensor that this model (custom) has (the file holds no tensors)"), r.err)
        try SafeTensors.write([("encoder.weight", Tensor(zeros: [2, 2]))], to: dir.appendingPathComponent("other.safetensors"))
        let o = try cli.run(["run", "asge-cifar10", "--data", "data/toy", "--epochs", "1", "--init-from",
                             dir.appendingPathComponent("other.safetensors").path,
                             "--out", dir.appendingPathComponent("r2").path] + tinyModel)
        XCTAssertTrue(o.status == 65 && o.err.contains("it holds 1, e.g. 'encoder.weight'"), o.all)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("r2/last.h5").path))
    }

    func testCheckpointCountersAndStatisticsAreChecked() throws {
        for (name, edit, why) in [
            ("negative.h5", { (c: inout Checkpoint) in c.numbers["epoch"] = .int(-3) }, "epoch = -3 is not a count in 0...1"),
            ("beyond.h5", { (c: inout Checkpoint) in c.numbers["epoch"] = .int(9) }, "(the stored config plans 1 epochs)"),
            ("huge.h5", { (c: inout Checkpoint) in
                c.numbers["epoch"] = nil
                c.attributes["epoch"] = String(repeating: "9", count: 60)
            }, "epoch = '9999999999999999999999999999999999999999...' is not a count"),
            ("nan-mean.h5", { (c: inout Checkpoint) in c.numbers["channel_mean"] = .doubles([.nan, 0.5, 0.5]) },
             "are not finite per-channel values"),
        ] as [(String, (inout Checkpoint) -> Void, String)] {
            let url = try edited(name, edit)
            let text = message { _ = try RunCheckpoint.describe(url) }
            XCTAssertTrue(text.contains(why), "\(name): \(text)")
            for args in [["run", "--resume", url.path], ["eval", "--checkpoint", url.path]] {
                let r = try cli.run(args)
                XCTAssertEqual(r.status, 65, "\(name) \(args[0]): \(r.all)")
            }
        }
        // A stored config with NaN (not JSON): said in words, not "Code=3840".
        let nan = try edited("nan-lr.h5") { c in
            c.attributes["config"] = c.attributes["config"]!.replacingOccurrences(
                of: #""lr" *: *[0-9.e-]+"#, with: "\"lr\": NaN", options: .regularExpression)
        }
        let text = message { _ = try RunCheckpoint.describe(nan) }
        XCTAssertTrue(text.contains("NaN and Infinity are not JSON numbers") && !text.contains("3840"), text)
    }

    func testNonRegularFilesAreRefusedWithoutBlocking() throws {
        let dir = Scratch.directory("fifo")
        for name in ["x.safetensors", "x.png", "x.h5"] {
            XCTAssertEqual(mkfifo(dir.appendingPathComponent(name).path, 0o600), 0)
        }
        let fifo = { (n: String) in dir.appendingPathComponent(n).path }
        let runs = [
            ["run", "asge-cifar10", "--data", "data/toy", "--epochs", "1", "--init-from", fifo("x.safetensors"),
             "--out", dir.appendingPathComponent("r").path] + tinyModel,
            ["predict", "--checkpoint", best.path, fifo("x.png")],
            ["eval", "--checkpoint", fifo("x.h5")],
            ["run", "asge-cifar10", "--data", "data/toy", "--epochs", "1", "--init-from", dir.path,
             "--out", dir.appendingPathComponent("r2").path] + tinyModel,
        ]
        for args in runs {
            let r = try cli.run(args)
            XCTAssertEqual(r.status, 64, r.all)
            XCTAssertTrue(r.err.contains("is not a regular file") || r.err.contains("is a directory, not a file"), r.err)
            XCTAssertFalse(r.err.contains("NSCocoaErrorDomain"), r.err)
        }
    }

    func testOptionsThatWouldChangeNothingAreRefused() throws {
        // Checked before the data is looked for, so a missing --data shows the config passed.
        func status(_ extra: [String]) throws -> CLI.Result {
            try cli.run(["run", "asge-cifar10", "--data", "no-such-data", "--epochs", "1"] + extra)
        }
        for (extra, why) in [
            (["--set", "cov=false"], "--set cov has no effect for asge-cifar10: it applies with local_loss = covariance-goodness"),
            (["--set", "momentum=0.5"], "--set momentum has no effect for asge-cifar10: it applies to optimizer = sgd"),
            (["--set", "temperature_init=1"], "it applies with learn_temperature = true"),
        ] {
            let r = try status(extra)
            XCTAssertEqual(r.status, 64, r.all)
            XCTAssertTrue(r.err.contains(why), r.err)
        }
        let fine = try status(["--set", "optimizer=sgd", "--set", "momentum=0.5"])
        XCTAssertTrue(fine.status == 66 && fine.err.contains("no-such-data"), fine.all)
        for bad in ["nan", "-1", "inf"] {
            let r = try cli.run(["eval", "--checkpoint", best.path, "--mpi-timeout", bad])
            XCTAssertEqual(r.status, 64, r.all)
            XCTAssertTrue(r.err.contains("--mpi-timeout"), r.err)
        }
    }

    func testMessagesPointTheRightWay() throws {
        let w = TrustWorkspace.shared.work
        // A folder of images: convert it (into its own folder), not `repro prep cifar10`.
        let images = try cli.run(["run", "asge-cifar10", "--data", "toy", "--epochs", "1"] + tinyModel)
        XCTAssertTrue(images.err.contains("holds images, not a converted dataset")
                      && images.err.contains("repro prep imagefolder --src \(w.appendingPathComponent("toy").path)")
                      && images.err.contains("--out data/toy"), images.err)
        XCTAssertFalse(images.err.contains("cifar-10-binary"), images.err)
        // Any other folder (here the workspace itself, standing for `/`): never "convert into it".
        let other = try cli.run(["run", "asge-cifar10", "--data", w.appendingPathComponent("runs").path, "--epochs", "1"])
        XCTAssertTrue(other.err.contains("is not a converted dataset") && !other.err.contains("--out \(w.path)/runs"),
                      other.err)
        // A run stopped in its first epoch (config and metrics, no last.h5): neither message sends to the other.
        let stopped = w.appendingPathComponent("runs/stopped")
        try FileManager.default.createDirectory(at: stopped, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: TrustWorkspace.shared.run.appendingPathComponent("config.json"),
                                         to: stopped.appendingPathComponent("config.json"))
        let resume = try cli.run(["run", "--resume", stopped.path])
        XCTAssertTrue(resume.err.contains("nothing to continue") && resume.err.contains("--out \(stopped.path) --overwrite"),
                      resume.err)
        let rerun = try cli.run(["run", "asge-cifar10", "--data", "data/toy", "--epochs", "1", "--out", stopped.path] + tinyModel)
        XCTAssertTrue(rerun.err.contains("add --overwrite to replace it (no epoch of it finished") && !rerun.err.contains("--resume"),
                      rerun.err)
        // predict names and accepts its own pixel limit.
        let png = TrustWorkspace.shared.work.appendingPathComponent("toy/test/red/000.png")
        let limited = try cli.run(["predict", "--checkpoint", best.path, "--max-image-pixels", "100", png.path])
        XCTAssertEqual(limited.status, 65, limited.all)
        XCTAssertTrue(limited.err.contains("more than the limit of 100") && limited.err.contains("--max-image-pixels"), limited.err)
        try cli.ok(["predict", "--checkpoint", best.path, "--max-image-pixels", "256", png.path])
    }

    func testPrepListsSkippedImagesOnce() throws {
        let src = Scratch.directory("bad-src")
        try ImageFolderFixture.writeFlat(src, perClass: 4)
        try Data("not an image".utf8).write(to: src.appendingPathComponent("red/bad.png"))
        let r = try cli.run(["prep", "imagefolder", "--src", src.path, "--size", "16",
                             "--out", Scratch.directory("bad-out").appendingPathComponent("d").path])
        XCTAssertEqual(r.status, 65, r.all)
        XCTAssertEqual(r.all.count(of: "bad.png: not a PNG or JPEG file"), 1, r.all)
    }
}
