import FFEngine
import FFIO
import Foundation
import XCTest

@testable import DataPrep

/// Conversions of hostile or damaged sources: each must end in a clear error or a reported
/// item, never a crash, a hang, or silently lost or doubled data.
final class PrepHardeningTests: XCTestCase {
    let fm = FileManager.default

    func folder(_ root: URL, _ rel: String) -> URL {
        let d = root.appendingPathComponent(rel)
        try! fm.createDirectory(at: d, withIntermediateDirectories: true)
        return d
    }

    func png(_ dir: URL, _ name: String, seed: Int = 0) {
        Fixtures.writePNG(dir.appendingPathComponent(name), Fixtures.smoothImage(12, 10, seed: seed), 12, 10)
    }

    func options(size: Int = 8) -> PrepOptions {
        var o = Fixtures.quiet
        o.size = size
        o.val = 0
        return o
    }

    func message(_ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) -> String {
        do {
            try body()
            XCTFail("no error", file: file, line: line)
            return ""
        } catch {
            return "\(error)"
        }
    }

    // MARK: crashes

    func testDiskFullIsAnErrorWithoutLeftovers() throws {
        let src = Fixtures.scratch(self)
        Fixtures.writeIDX(src, train: 40, test: 10, gzip: false, dotNames: false)
        // Files may not grow past a limit (what a full disk looks like to the writer):
        // writes fail with EFBIG instead of ENOSPC. Several limits hit data and metadata.
        signal(SIGXFSZ, SIG_IGN)
        var old = rlimit()
        getrlimit(Int32(RLIMIT_FSIZE.rawValue), &old)
        defer { setrlimit(Int32(RLIMIT_FSIZE.rawValue), &old) }
        for limit in [2000, 9000, 20000, 31000, 32000, 33000, 34000] {
            let out = Fixtures.scratch(self)
            var o = Fixtures.quiet
            o.val = 10
            o.shardBytes = 40 * 784
            var lim = rlimit(rlim_cur: rlim_t(limit), rlim_max: old.rlim_max)
            setrlimit(Int32(RLIMIT_FSIZE.rawValue), &lim)
            let text = message { _ = try DataPrep.mnist(source: src, output: out, options: o) }
            setrlimit(Int32(RLIMIT_FSIZE.rawValue), &old)
            XCTAssertTrue(text.contains("Cannot write") || text.contains("cannot") || text.contains("Cannot"), "\(limit): \(text)")
            XCTAssertFalse(text.contains("\n"), "one sentence: \(text)")
            let left = try fm.contentsOfDirectory(atPath: out.path).filter { $0.contains(".tmp.") }
            XCTAssertEqual(left, [], "\(limit)")
            // With space again the same command finishes.
            XCTAssertEqual(try DataPrep.mnist(source: src, output: out, options: o).index.splits["train"]?.count, 30)
        }
    }

    func testIDXHeaderWithOverflowingDimensions() throws {
        let src = Fixtures.scratch(self)
        Fixtures.writeIDX(src, train: 4, test: 2, gzip: false, dotNames: false)
        let bomb: [UInt8] = [0, 0, 8, 3] + [0xFF, 0xFF, 0xFF, 0xFF] + [0xFF, 0xFF, 0xFF, 0xFF] + [0xFF, 0xFF, 0xFF, 0xFF]
        XCTAssertEqual(bomb.count, 16)
        try Data(bomb).write(to: src.appendingPathComponent("train-images-idx3-ubyte"))
        let text = message { _ = try DataPrep.mnist(source: src, output: Fixtures.scratch(self), options: Fixtures.quiet) }
        XCTAssertTrue(text.contains("overflows") || text.contains("1...4096"), text)
        // Zero-sized images are refused too.
        try Data([0, 0, 8, 3] + Fixtures.bigEndian(4) + Fixtures.bigEndian(0) + Fixtures.bigEndian(28))
            .write(to: src.appendingPathComponent("train-images-idx3-ubyte"))
        XCTAssertTrue(message { _ = try DataPrep.mnist(source: src, output: Fixtures.scratch(self), options: Fixtures.quiet) }
            .contains("0x28 images"))
    }

    func testAbsurdOptionsAreRefusedWithTheirRange() throws {
        let src = Fixtures.scratch(self)
        png(folder(src, "a"), "1.png")
        let cases: [(PrepOptions, String)] = [
            ({ var o = options(); o.size = 100000; return o }(), "--size 100000 is outside 1...4096"),
            ({ var o = options(); o.size = 0; return o }(), "--size 0 is outside 1...4096"),
            ({ var o = options(); o.threads = 1000; return o }(), "--threads 1000 is outside 0...256"),
            ({ var o = options(); o.threads = -2; return o }(), "--threads -2 is outside 0...256"),
            ({ var o = options(); o.shardBytes = Int.max; return o }(), "outside 1 byte...4096 MiB"),
            ({ var o = options(); o.maxBad = 2; return o }(), "--max-bad 200.0% is outside 0...100%"),
            ({ var o = options(); o.maxImagePixels = 0; return o }(), "--max-image-pixels 0 is outside"),
            ({ var o = options(); o.val = -1; return o }(), "--val -1 must be at least 0"),
        ]
        for (o, expected) in cases {
            let out = Fixtures.scratch(self)
            let text = message { _ = try DataPrep.imageFolder(source: src, output: out, options: o) }
            XCTAssertTrue(text.contains(expected), text)
            XCTAssertEqual(try fm.contentsOfDirectory(atPath: out.path), [], "nothing written before the check")
        }
    }

    // MARK: duplicates and paths in list files

    func makeTiny(_ root: URL, wnids: [String], annotations: String) throws {
        try (wnids.joined(separator: "\n") + "\n").write(to: root.appendingPathComponent("wnids.txt"), atomically: true, encoding: .utf8)
        for w in Set(wnids) {
            let d = folder(root, "train/\(w)/images")
            for i in 0..<2 { png(d, "\(w)_\(i).png", seed: i) }
        }
        let val = folder(root, "val/images")
        for i in 0..<2 { png(val, "val_\(i).png", seed: 5 + i) }
        try annotations.write(to: root.appendingPathComponent("val/val_annotations.txt"), atomically: true, encoding: .utf8)
    }

    func testTinyImageNetListsAreChecked() throws {
        let good = "val_0.png\tn01\t0\t0\t1\t1\nval_1.png\tn02\t0\t0\t1\t1\n"
        let dup = Fixtures.scratch(self)
        try makeTiny(dup, wnids: ["n01", "n02", "n01"], annotations: good)
        var text = message { _ = try DataPrep.tinyImagenet(source: dup, output: Fixtures.scratch(self), options: Fixtures.quiet) }
        XCTAssertTrue(text.contains("lists class n01 twice (lines 1 and 3)"), text)

        for (ann, expected) in [
            ("../../secret.png\tn01\t0\t0\t1\t1\n", "not a file name inside val/images"),
            ("val_0.png\tn01\t0\t0\t1\t1\nval_0.png\tn02\t0\t0\t1\t1\n", "lists val_0.png twice (lines 1 and 2)"),
            ("val_0.png\tn07\t0\t0\t1\t1\n", "not in wnids.txt"),
        ] {
            let root = Fixtures.scratch(self)
            try makeTiny(root, wnids: ["n01", "n02"], annotations: ann)
            text = message { _ = try DataPrep.tinyImagenet(source: root, output: Fixtures.scratch(self), options: Fixtures.quiet) }
            XCTAssertTrue(text.contains(expected), text)
        }
        let bad = Fixtures.scratch(self)
        try makeTiny(bad, wnids: ["n01", "../n02"], annotations: good)
        text = message { _ = try DataPrep.tinyImagenet(source: bad, output: Fixtures.scratch(self), options: Fixtures.quiet) }
        XCTAssertTrue(text.contains("is not a class folder name"), text)
    }

    func testDuplicatedClassInClassListIsRefused() throws {
        let root = Fixtures.scratch(self)
        for split in ["train", "val"] {
            for w in ["n01", "n02"] { png(folder(root, "\(split)/\(w)"), "x.png") }
        }
        let list = root.appendingPathComponent("classes.txt")
        try "n01\nn02\n\nn01\n".write(to: list, atomically: true, encoding: .utf8)
        var o = Fixtures.quiet
        o.classList = list
        o.size = 8
        o.val = 0
        let text = message { _ = try DataPrep.imagenet100(source: root, output: Fixtures.scratch(self), options: o) }
        XCTAssertTrue(text.contains("lists class n01 twice (lines 1 and 4)"), text)
        try "n01\nn02\n".write(to: list, atomically: true, encoding: .utf8)
        let r = try DataPrep.imagenet100(source: root, output: Fixtures.scratch(self), options: o)
        XCTAssertEqual(r.index.splits["train"]?.count, 2)
        XCTAssertEqual(r.index.splits["test"]?.count, 2)
    }

    // MARK: data that used to be dropped silently

    func testSymlinkedFilesAndFoldersAreConvertedAndBrokenLinksReported() throws {
        let store = Fixtures.scratch(self)
        for i in 0..<3 { png(store, "img\(i).png", seed: i) }
        let root = Fixtures.scratch(self)
        let a = folder(root, "a")
        for i in 0..<3 {
            try fm.createSymbolicLink(atPath: a.appendingPathComponent("l\(i).png").path, withDestinationPath: store.appendingPathComponent("img\(i).png").path)
        }
        try fm.createSymbolicLink(atPath: a.appendingPathComponent("gone.png").path, withDestinationPath: store.appendingPathComponent("nothing.png").path)
        // A class folder that is a link, and a link inside it back to its parent (a loop).
        try fm.createSymbolicLink(atPath: root.appendingPathComponent("b").path, withDestinationPath: store.path)
        try fm.createSymbolicLink(atPath: store.appendingPathComponent("loop").path, withDestinationPath: store.path)
        var o = options()
        o.maxBad = 0.5
        let r = try DataPrep.imageFolder(source: root, output: Fixtures.scratch(self), options: o)
        XCTAssertEqual(r.index.labelSets["labels"], ["a", "b"])
        XCTAssertEqual(r.index.splits["train"]?.count, 6)
        XCTAssertEqual(r.skipped.map(\.path), ["a/gone.png"])
        XCTAssertTrue(r.skipped[0].reason.contains("broken symbolic link"), r.skipped[0].reason)
    }

    func testNamesThatAreNotUTF8AreConverted() throws {
        let root = Fixtures.scratch(self)
        let base = FSPath(root.path)
        let cls = base.appending(FSPath([0x63, 0x61, 0x66, 0xE9]))  // "caf\xE9" (Latin-1)
        XCTAssertEqual(cls.withCString { mkdir($0, 0o755) }, 0)
        let src = root.appendingPathComponent("tmp.png")
        png(root, "tmp.png")
        let file = cls.appending(FSPath([0x69, 0xFF, 0x2E, 0x70, 0x6E, 0x67]))  // "i\xFF.png"
        XCTAssertEqual(src.path.withCString { s in file.withCString { rename(s, $0) } }, 0)
        png(folder(root, "plain"), "ok.png")
        let r = try DataPrep.imageFolder(source: root, output: Fixtures.scratch(self), options: options())
        XCTAssertEqual(r.index.labelSets["labels"], ["caf\\xE9", "plain"])
        XCTAssertEqual(r.index.splits["train"]?.count, 2)
        XCTAssertEqual(r.skipped, [])
    }

    func testUnreadableFoldersAndDanglingClassLinksAreErrors() throws {
        let root = Fixtures.scratch(self)
        png(folder(root, "a"), "1.png")
        try fm.createSymbolicLink(atPath: root.appendingPathComponent("b").path, withDestinationPath: "/nonexistent/ffrepro")
        var text = message { _ = try DataPrep.imageFolder(source: root, output: Fixtures.scratch(self), options: options()) }
        XCTAssertTrue(text.contains("/b cannot be examined") && text.contains("broken symbolic link"), text)
        try fm.removeItem(at: root.appendingPathComponent("b"))

        // Permissions do not stop root, so this half needs an ordinary user.
        try XCTSkipIf(getuid() == 0, "running as root: folders cannot be made unreadable")
        let hidden = folder(root, "a/sub")
        png(hidden, "2.png")
        XCTAssertEqual(chmod(hidden.path, 0), 0)
        text = message { _ = try DataPrep.imageFolder(source: root, output: Fixtures.scratch(self), options: options()) }
        XCTAssertTrue(text.contains("Cannot read the folder") && text.contains("a/sub"), text)
    }

    func testEmptyClassFoldersAreReported() throws {
        let root = Fixtures.scratch(self)
        png(folder(root, "a"), "1.png")
        _ = folder(root, "b")
        try Data("x".utf8).write(to: folder(root, "c").appendingPathComponent("notes.txt"))
        let text = message { _ = try DataPrep.imageFolder(source: root, output: Fixtures.scratch(self), options: options()) }
        XCTAssertTrue(text.contains("Class folders without any image: b, c"), text)
    }

    // MARK: outputs that could be mixed up

    func testTwoConversionsCannotShareAnOutputDirectory() throws {
        let src = Fixtures.scratch(self)
        png(folder(src, "a"), "1.png")
        let out = Fixtures.scratch(self)
        let held = try DirectoryLock(out, purpose: "another conversion")
        var text = message { _ = try DataPrep.imageFolder(source: src, output: out, options: options()) }
        XCTAssertTrue(text.contains("is in use by another repro process (pid \(getpid()): another conversion"), text)
        do {
            _ = try DataPrep.imageFolder(source: src, output: out, options: options())
        } catch let e as FFError {
            XCTAssertEqual(e.kind, .busy)
            XCTAssertEqual(e.exitCode, 75)
        }
        held.release()
        XCTAssertEqual(try DataPrep.imageFolder(source: src, output: out, options: options()).index.splits["train"]?.count, 1)
        // An output path that is a file.
        let file = out.appendingPathComponent("index.json")
        text = message { _ = try DataPrep.imageFolder(source: src, output: file, options: options()) }
        XCTAssertTrue(text.contains("is a file, not a directory"), text)
    }

    func testStaleTemporariesOfDeadProcessesAreRemoved() throws {
        let dir = Fixtures.scratch(self)
        var dead: Int32 = 4_000_000
        while kill(dead, 0) == 0 || errno == EPERM { dead -= 1 }
        let live = getppid()
        for name in ["train-00000.h5.tmp.\(dead)", "last.h5.tmp.\(dead)", "best.h5.tmp.\(live)", "notes.tmp.txt"] {
            try Data([1]).write(to: dir.appendingPathComponent(name))
        }
        XCTAssertEqual(AtomicFile.removeStaleTemporaries(in: dir), ["last.h5.tmp.\(dead)", "train-00000.h5.tmp.\(dead)"])
        XCTAssertEqual(Set(try fm.contentsOfDirectory(atPath: dir.path)), ["best.h5.tmp.\(live)", "notes.tmp.txt"])
    }

    // MARK: stuck states

    func testRerunAfterFixingABadImageSucceeds() throws {
        let src = Fixtures.scratch(self)
        let a = folder(src, "a")
        for i in 0..<3 { png(a, "\(i).png", seed: i) }
        try Data("broken".utf8).write(to: a.appendingPathComponent("3.png"))
        let out = Fixtures.scratch(self)
        let text = message { _ = try DataPrep.imageFolder(source: src, output: out, options: options()) }
        XCTAssertTrue(text.contains("1 of 4 images") && text.contains("a/3.png"), text)
        png(a, "3.png", seed: 3)  // fixed
        let r = try DataPrep.imageFolder(source: src, output: out, options: options())
        XCTAssertEqual(r.skipped, [])
        XCTAssertEqual(r.index.splits["train"]?.count, 4)
    }

    func testRerunOverADamagedConversionRepairsIt() throws {
        let src = Fixtures.scratch(self)
        Fixtures.writeIDX(src, train: 60, test: 20, gzip: false, dotNames: false)
        var o = Fixtures.quiet
        o.val = 10
        o.shardBytes = 20 * 784
        let out = Fixtures.scratch(self)
        _ = try DataPrep.mnist(source: src, output: out, options: o)
        let reference = Fixtures.snapshot(out)
        // Same size, one byte of pixels changed: only the checksum can tell.
        let shard = out.appendingPathComponent("train-00001.h5")
        var bytes = [UInt8](try Data(contentsOf: shard))
        bytes[bytes.count - 100] ^= 0x40
        try Data(bytes).write(to: shard)
        let r = try DataPrep.mnist(source: src, output: out, options: o)
        XCTAssertFalse(r.alreadyComplete)
        XCTAssertEqual(r.shardsWritten, 1)
        XCTAssertEqual(Fixtures.snapshot(out), reference)
        XCTAssertTrue(try DataPrep.mnist(source: src, output: out, options: o).alreadyComplete)
        // --force converts everything again, to the same bytes.
        o.force = true
        XCTAssertEqual(try DataPrep.mnist(source: src, output: out, options: o).shardsWritten, 5)
        XCTAssertEqual(Fixtures.snapshot(out), reference)
    }
}
