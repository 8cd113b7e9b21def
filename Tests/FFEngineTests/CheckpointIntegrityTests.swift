import FFEngine
import Foundation
import XCTest

/// Checkpoints that were damaged or edited must be refused, naming the tensor and the file;
/// files written before the checksums existed stay readable.
final class CheckpointIntegrityTests: XCTestCase {
    func scratch() -> URL {
        let url = ShardFixture.tempDir()
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    /// Weights whose bytes are easy to find in the file.
    let weights: [Float] = (0..<64).map { 1000 + Float($0) }

    func sample(_ attrs: [String: String] = ["recipe": "x", "epoch": "3"]) -> Checkpoint {
        Checkpoint(tensors: [("params/w", Tensor(shape: [8, 8], values: weights)), ("params/b", Tensor(shape: [2], values: [1, 2]))],
                   attributes: attrs, uint64Arrays: [("state/optimizer_steps", [5, 5])])
    }

    func error(_ body: () throws -> Void) -> String {
        do { try body(); return "no error" } catch { return "\(error)" }
    }

    /// A file as version 1 wrote it before checksums: same layout, no integrity attributes.
    func writeLegacy(_ url: URL, tensors: [(String, [Float], [Int])], int32: [(String, [Int32])] = [],
                     attrs: [String: String]) throws {
        let f = try HDF5File(url, mode: .create)
        for (name, values, shape) in tensors {
            try values.withUnsafeBufferPointer { try f.write(name, shape: shape, values: $0) }
        }
        for (name, values) in int32 {
            try values.withUnsafeBufferPointer { try f.write(name, shape: [values.count], values: $0) }
        }
        try f.setAttribute("ffrepro_format", Checkpoint.format)
        try f.setAttribute("ffrepro_format_version", "1")
        for (k, v) in attrs { try f.setAttribute(k, v) }
        try f.close()
    }

    func testBitFlipInATensorIsRefusedNamingTensorAndFile() throws {
        let url = scratch().appendingPathComponent("best.h5")
        try sample().write(to: url)
        XCTAssertNoThrow(try Checkpoint.read(from: url))
        var bytes = [UInt8](try Data(contentsOf: url))
        let pattern = withUnsafeBytes(of: weights[10]) { Array($0) }
        let at = try XCTUnwrap((0..<(bytes.count - 4)).first { Array(bytes[$0..<$0 + 4]) == pattern })
        bytes[at + 1] ^= 0x01
        try Data(bytes).write(to: url)
        let text = error { _ = try Checkpoint.read(from: url) }
        XCTAssertTrue(text.contains(url.path) && text.contains("tensor 'params/w' does not match its checksum"), text)
    }

    /// A network with many tensors (MobileNetV3 with its optimizer state: ~1000 datasets)
    /// needs an integrity record past 64 KiB; the file must still be found to be HDF5.
    func testManyTensorsNeedALargeUserBlockAndStillRead() throws {
        let url = scratch().appendingPathComponent("many.h5")
        let names = (0..<1200).map { "params/features.\($0 / 10).block.\($0 % 10).0.weight/adam_second_moment" }
        let tensors = names.enumerated().map { ($0.element, Tensor(shape: [2], values: [Float($0.offset), 1])) }
        try Checkpoint(tensors: tensors, attributes: ["recipe": "x"]).write(to: url)
        let head = [UInt8](try Data(contentsOf: url).prefix(4096))
        XCTAssertGreaterThan(Checkpoint.userblockBytes(of: head), 65536)
        let back = try Checkpoint.read(from: url)
        XCTAssertEqual(back.tensors.count, names.count)
        XCTAssertEqual(back.tensors.last?.1.array, [Float(names.count - 1), 1])
    }

    func testNonFiniteTensorsAreRefusedOnWriteAndRead() throws {
        let dir = scratch()
        let nan = Checkpoint(tensors: [("params/w", Tensor(shape: [2], values: [1, .nan]))])
        XCTAssertTrue(error { try nan.write(to: dir.appendingPathComponent("a.h5")) }.contains("'params/w' holds 1 NaN/Inf"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("a.h5").path))
        // Edited in place with matching checksums gone (a legacy file): the finite check.
        let url = dir.appendingPathComponent("legacy.h5")
        try writeLegacy(url, tensors: [("params/w", [1, .infinity, .nan, 2], [4])], attrs: ["recipe": "x"])
        let text = error { _ = try Checkpoint.read(from: url) }
        XCTAssertTrue(text.contains(url.path) && text.contains("tensor 'params/w' holds 2 NaN/Inf value(s)"), text)
    }

    func testEditedRunAttributesAreRefused() throws {
        let url = scratch().appendingPathComponent("last.h5")
        try sample(["classes": "10", "input_shape": "3,32,32"]).write(to: url)
        let f = try HDF5File(url, mode: .readWrite)
        try f.setAttribute("classes", "1000000000")
        try f.close()
        for read in [{ _ = try Checkpoint.read(from: url) }, { _ = try Checkpoint.readAttributes(from: url) }] {
            let text = error(read)
            // The user-block record catches the edit before HDF5 parses the file.
            XCTAssertTrue(text.contains(url.path) && text.contains("structure or attributes (not the tensor data)"), text)
        }
    }

    func testAttributeChecksumCatchesEditsWithoutARecord() throws {
        // A file whose integrity record was dropped (e.g. rewritten by a tool): the
        // attribute checksum inside still catches an edited run attribute.
        let url = scratch().appendingPathComponent("norecord.h5")
        try sample(["classes": "10"]).write(to: url)
        let h5 = try HDF5File(url, mode: .readWrite)
        try h5.setAttribute("classes", "99")
        try h5.close()
        var bytes = [UInt8](try Data(contentsOf: url))
        let u = 1 << 10
        XCTAssertEqual(Array(bytes[u..<u + 4]), [0x89, 0x48, 0x44, 0x46])
        bytes = Array(bytes[u...])  // without the user block (HDF5 addresses are relative to it)
        try Data(bytes).write(to: url)
        let text = error { _ = try Checkpoint.readAttributes(from: url) }
        XCTAssertTrue(text.contains("run attributes") && text.contains("do not match their checksum"), text)
    }

    func testEditedGeometryOfALegacyCheckpointIsRefused() throws {
        let dir = scratch()
        var config = try Recipes.named("asge-fmnist")
        let good = ["config": config.json(), "input_shape": "1,28,28", "classes": "10", "recipe": config.name]
        let cases: [([String: String], String)] = [
            (good.merging(["classes": "1000000000"]) { $1 }, "classes = 1000000000 is outside 1...1000000"),
            (good.merging(["classes": "0"]) { $1 }, "classes = 0 is outside"),
            (good.merging(["input_shape": "1,28"]) { $1 }, "input_shape '1,28' is not C,H,W"),
            (good.merging(["input_shape": "1,abc,28"]) { $1 }, "input_shape '1,abc,28' is not C,H,W"),
            (good.merging(["input_shape": "1,100000,28"]) { $1 }, "is not C,H,W"),
        ]
        for (attrs, expected) in cases {
            let url = dir.appendingPathComponent("c.h5")
            try writeLegacy(url, tensors: [("params/w", [1], [1])], attrs: attrs)
            let text = error { _ = try RunCheckpoint.describe(url) }
            XCTAssertTrue(text.contains(expected) && text.contains(url.path), text)
        }
        config.inputSize = 32
        let url = dir.appendingPathComponent("d.h5")
        try writeLegacy(url, tensors: [("params/w", [1], [1])], attrs: good.merging(["config": config.json()]) { $1 })
        XCTAssertTrue(error { _ = try RunCheckpoint.describe(url) }.contains("input_size 32 but input_shape is [1, 28, 28]"))
        config.inputSize = nil
        config.beta1 = 1.5
        try writeLegacy(url, tensors: [("params/w", [1], [1])], attrs: good.merging(["config": config.json()]) { $1 })
        XCTAssertTrue(error { _ = try RunCheckpoint.describe(url) }.contains("beta1 = 1.5 is outside [0.0, 1.0)"))
        XCTAssertNoThrow(try writeLegacy(url, tensors: [("params/w", [1], [1])], attrs: good))
        XCTAssertEqual(try RunCheckpoint.describe(url).classes, 10)
    }

    func testWrongTypeIsNamedNotCalledMissing() throws {
        let url = scratch().appendingPathComponent("t.h5")
        try writeLegacy(url, tensors: [("params/b", [1, 2], [2])], int32: [("params/w", [1, 2, 3, 4])], attrs: ["recipe": "x"])
        let c = try Checkpoint.read(from: url)
        let problems = c.problems(expected: [("params/w", [4]), ("params/b", [2])])
        XCTAssertEqual(problems, ["parameter 'params/w' is stored as int32, not float32"])
        // With checksums, retyping a dataset is caught while reading.
        let url2 = scratch().appendingPathComponent("u.h5")
        try sample().write(to: url2)
        XCTAssertNoThrow(try Checkpoint.read(from: url2))
    }

    func testLegacyFilesWithoutChecksumsStillLoad() throws {
        let url = scratch().appendingPathComponent("v1.h5")
        try writeLegacy(url, tensors: [("params/w", weights, [8, 8])], attrs: ["recipe": "x"])
        let c = try Checkpoint.read(from: url)
        XCTAssertEqual(c.tensor("params/w")?.array, weights)
        // New files carry the checksums documented in checkpoints/README.md.
        let fresh = scratch().appendingPathComponent("v1b.h5")
        try sample().write(to: fresh)
        let f = try HDF5File(fresh)
        XCTAssertEqual(try f.stringAttribute(Checkpoint.checksumsKey), "sha256-v1")
        XCTAssertEqual(try f.stringAttribute("sha256", on: "params/b").count, 64)
        XCTAssertEqual(try f.stringAttribute("ffrepro_format_version"), "1")
    }

    /// A full disk (here: a file-size limit) while a checkpoint is written: an error, the
    /// previous file untouched, no temporary file left, no crash in HDF5 or at exit.
    func testFullDiskWhileWritingACheckpoint() throws {
        let dir = scratch()
        let url = dir.appendingPathComponent("best.h5")
        try sample().write(to: url)
        let before = try Data(contentsOf: url)
        let big = Checkpoint(tensors: [("params/w", Tensor(shape: [64, 256], values: (0..<16384).map { Float($0) }))])
        signal(SIGXFSZ, SIG_IGN)
        var old = rlimit()
        getrlimit(Int32(RLIMIT_FSIZE.rawValue), &old)
        defer { setrlimit(Int32(RLIMIT_FSIZE.rawValue), &old) }
        for limit in [1000, 4000, 20000, 60000, 66000] {
            var lim = rlimit(rlim_cur: rlim_t(limit), rlim_max: old.rlim_max)
            setrlimit(Int32(RLIMIT_FSIZE.rawValue), &lim)
            let text = error { try big.write(to: url) }
            setrlimit(Int32(RLIMIT_FSIZE.rawValue), &old)
            XCTAssertTrue(text.contains("Cannot write checkpoint \(url.path)") && text.contains("unchanged"), "\(limit): \(text)")
            XCTAssertEqual(try Data(contentsOf: url), before, "\(limit)")
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["best.h5"], "\(limit)")
        }
        try big.write(to: url)
        XCTAssertEqual(try Checkpoint.read(from: url).tensor("params/w")?.count, 16384)
    }
}
