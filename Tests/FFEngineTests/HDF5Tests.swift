import FFEngine
import FFIO
import Foundation
import XCTest

final class HDF5Tests: XCTestCase {
    func testDatasetsAttributesAndHyperslabs() throws {
        let url = ShardFixture.tempDir().appendingPathComponent("t.h5")
        let f = try HDF5File(url, mode: .create)
        let d = try f.createDataset("g1/g2/data", type: .uint8, shape: [10, 2, 3], chunk: [3, 2, 3])
        let values = (0..<60).map { UInt8($0) }
        try values.withUnsafeBufferPointer { try d.write($0, start: nil, count: nil) }
        try f.setAttribute("name", "héllo")
        try f.setAttribute("sizes", [Int64(1), 2, 3])
        try f.setAttribute("one", [3.5], scalar: true, on: "g1/g2/data")
        try f.close()

        let r = try HDF5File(url)
        XCTAssertEqual(try r.datasetNames(), ["g1/g2/data"])
        let rd = try r.dataset("g1/g2/data")
        XCTAssertEqual(rd.shape, [10, 2, 3])
        XCTAssertEqual(rd.type, .uint8)
        var block = [UInt8](repeating: 0, count: 12)
        try block.withUnsafeMutableBufferPointer { try rd.read(into: $0, start: [4, 0, 0], count: [2, 2, 3]) }
        XCTAssertEqual(block, Array(values[24..<36]))
        var rows = [UInt8](repeating: 0, count: 18)
        try rd.readRows([7, 2, 3], into: &rows)
        XCTAssertEqual(rows, Array(values[42..<48] + values[12..<24]))
        XCTAssertEqual(try rd.read(as: Float.self).last, 59)
        XCTAssertEqual(try r.stringAttribute("name"), "héllo")
        XCTAssertEqual(try r.attribute("sizes", as: Int64.self), [1, 2, 3])
        XCTAssertEqual(try r.attribute("one", as: Double.self, on: "g1/g2/data"), [3.5])
        XCTAssertEqual(try r.attributeNames(), ["name", "sizes"])
        XCTAssertThrowsError(try block.withUnsafeMutableBufferPointer { try rd.read(into: $0, start: [9, 0, 0], count: [2, 2, 3]) }) { e in
            XCTAssertTrue("\(e)".contains(url.path) && "\(e)".contains("outside axis 0"), "\(e)")
        }
        XCTAssertThrowsError(try r.dataset("missing")) { e in
            XCTAssertTrue("\(e)".contains("has no dataset 'missing'") && "\(e)".contains(url.path), "\(e)")
        }
    }

    func testIdenticalWritesGiveIdenticalBytes() throws {
        func write(_ url: URL) throws {
            let f = try HDF5File(url, mode: .create)
            let d = try f.createDataset("a/b", type: .float32, shape: [4])
            try [Float(1), 2, 3, 4].withUnsafeBufferPointer { try d.write($0, start: nil, count: nil) }
            try f.setAttribute("x", "y")
            try f.setAttribute("v", [Double.nan, 1])
            try f.close()
            // In-place update of a numeric attribute, as the converter's finalize step does.
            let g = try HDF5File(url, mode: .readWrite)
            try g.setAttribute("v", [0.5, 1])
            try g.close()
        }
        let dir = ShardFixture.tempDir()
        try write(dir.appendingPathComponent("1.h5"))
        Thread.sleep(forTimeInterval: 1.1)
        try write(dir.appendingPathComponent("2.h5"))
        XCTAssertEqual(try Data(contentsOf: dir.appendingPathComponent("1.h5")), try Data(contentsOf: dir.appendingPathComponent("2.h5")))
    }

    func testTruncatedAndNonHDF5FilesAreNamed() throws {
        let dir = ShardFixture.tempDir()
        let url = dir.appendingPathComponent("t.h5")
        let f = try HDF5File(url, mode: .create)
        _ = try f.createDataset("x", type: .float32, shape: [1000])
        try f.close()
        let data = try Data(contentsOf: url)
        try data.prefix(1000).write(to: url)
        XCTAssertThrowsError(try HDF5File(url)) { e in
            let text = "\(e)"
            XCTAssertTrue(text.contains(url.path) && text.contains("truncated"), text)
            XCTAssertEqual((e as? FFError)?.kind, .corrupt)
        }
        try Data(repeating: 1, count: 4000).write(to: url)
        XCTAssertThrowsError(try HDF5File(url)) { e in
            XCTAssertTrue("\(e)".contains(url.path) && "\(e)".contains("not an HDF5 file"), "\(e)")
        }
    }

    func testSHA256MatchesTheStandardVectors() throws {
        let dir = ShardFixture.tempDir()
        let abc = dir.appendingPathComponent("abc"), million = dir.appendingPathComponent("a")
        try Data("abc".utf8).write(to: abc)
        try Data(repeating: UInt8(ascii: "a"), count: 1_000_000).write(to: million)
        XCTAssertEqual(try AtomicFile.sha256(of: abc), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(try AtomicFile.sha256(of: million), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        // The portable code path too (the SHA-extension path is used where the CPU has it).
        setenv("FFREPRO_NO_SHANI", "1", 1)
        defer { unsetenv("FFREPRO_NO_SHANI") }
        XCTAssertEqual(try AtomicFile.sha256(of: million), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    /// Python interpreter with h5py: $FFREPRO_PYTHON, else python3.
    func python() throws -> String {
        let py = ProcessInfo.processInfo.environment["FFREPRO_PYTHON"] ?? "python3"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [py, "-c", "import h5py, numpy"]
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch { throw XCTSkip("\(py) cannot be run") }
        p.waitUntilExit()
        if p.terminationStatus != 0 { throw XCTSkip("h5py is not importable by \(py) (set FFREPRO_PYTHON to a Python with h5py)") }
        return py
    }

    func testH5pyReadsShardsAndCheckpoints() throws {
        let py = try python()
        let dir = ShardFixture.tempDir()
        try ShardFixture.make(dir, counts: [6], h: 3, w: 4, c: 2)
        let ck = dir.appendingPathComponent("ck.h5")
        try Checkpoint(tensors: [("params/l1.conv.weight", Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6.5]))],
                       attributes: ["config": "{\"a\": 1}"], uint64Arrays: [("rng", [7, UInt64.max])]).write(to: ck)
        let script = """
        import h5py, numpy as np, sys, json
        d = sys.argv[1]
        with h5py.File(d + "/train-00000.h5", "r") as f:
            im = f["images"][...]
            assert im.dtype == np.uint8 and im.shape == (6, 3, 4, 2), im.shape
            n = np.arange(6 * 24)
            i, k = n // 24, n % 24
            ref = ((i * 131 + k * 29 + (k * k * 7) % 61) & 255).astype(np.uint8).reshape(6, 3, 4, 2)
            assert (im == ref).all()
            assert list(f["labels"][...]) == [0, 1, 2, 3, 4, 5]
            assert f.attrs["format"] == "ffrepro-shard"
        with h5py.File(d + "/ck.h5", "r") as f:
            w = f["params/l1.conv.weight"][...]
            assert w.dtype == np.float32 and w.tolist() == [[1, 2, 3], [4, 5, 6.5]]
            assert json.loads(f.attrs["config"]) == {"a": 1}
            assert f["rng"][...].tolist() == [7, 2**64 - 1]
        with h5py.File(d + "/py.h5", "w") as f:
            f["params/w"] = np.arange(6, dtype=np.float32).reshape(2, 3)
            f.attrs["note"] = "from python"
        print("ok")
        """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [py, "-c", script, dir.path]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        p.waitUntilExit()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertEqual(p.terminationStatus, 0, out)
        // And Swift reads what h5py wrote.
        let back = try Checkpoint.read(from: dir.appendingPathComponent("py.h5"), allowForeign: true)
        XCTAssertEqual(back.tensor("params/w")?.shape, [2, 3])
        XCTAssertEqual(back.tensor("params/w")?.array, [0, 1, 2, 3, 4, 5])
        XCTAssertEqual(back.attributes["note"], "from python")
    }

    /// Whole chunks written directly (H5Dwrite_chunk) and the same rows written as
    /// hyperslabs give the same file, byte for byte.
    func testDirectChunkWritesEqualHyperslabWrites() throws {
        let dir = ShardFixture.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let px = (0..<(8 * 16)).map { UInt8(($0 * 37) & 255) }
        var files: [Data] = []
        for splits in [[0, 8], [0, 3, 8], [0, 2, 4, 6, 8]] {
            let url = dir.appendingPathComponent("f\(splits.count).h5")
            let f = try HDF5File(url, mode: .create)
            let d = try f.createDataset("images", type: .uint8, shape: [8, 4, 4, 1], chunk: [2, 4, 4, 1])
            try px.withUnsafeBufferPointer { p in
                for (a, b) in zip(splits, splits.dropFirst()) {
                    try d.writeRows(UnsafeBufferPointer(rebasing: p[(a * 16)..<(b * 16)]), row: a, count: b - a)
                }
            }
            try f.close()
            XCTAssertEqual(try HDF5File(url).dataset("images").read(as: UInt8.self), px)
            files.append(try Data(contentsOf: url))
        }
        XCTAssertEqual(files[0], files[1])
        XCTAssertEqual(files[0], files[2])
    }
}
