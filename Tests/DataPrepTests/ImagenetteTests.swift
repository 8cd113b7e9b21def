import FFEngine
import FFIO
import Foundation
import XCTest

@testable import DataPrep

/// `repro prep imagenette`: the official archive layout (one imagenette2-*/ top folder with
/// train/ and val/ of the 10 wnid folders), readable class names, official val as test, and
/// archives that are not Imagenette.
final class ImagenetteTests: XCTestCase {
    func archiveFiles(perClass: Int, skip: String? = nil) -> [(String, [UInt8])] {
        let dir = Fixtures.tempDir("ffnette-jpeg")
        defer { try? FileManager.default.removeItem(at: dir) }
        var files: [(String, [UInt8])] = []
        for (c, cls) in ImagenetteSource.classes.enumerated() where cls.wnid != skip {
            for split in ["train", "val"] {
                for i in 0..<perClass {
                    let url = dir.appendingPathComponent("x.jpg")
                    Fixtures.writeJPEG(url, Fixtures.smoothImage(24, 20, seed: c * 10 + i), 24, 20)
                    files.append(("imagenette2-160/\(split)/\(cls.wnid)/img\(i).JPEG", Array(try! Data(contentsOf: url))))
                }
            }
        }
        return files
    }

    func testOfficialArchiveAndFolder() throws {
        let root = Fixtures.tempDir("ffnette")
        defer { try? FileManager.default.removeItem(at: root) }
        let archive = root.appendingPathComponent("imagenette2-160.tgz")
        Fixtures.writeTarGz(archive, files: archiveFiles(perClass: 3))
        var o = Fixtures.quiet
        o.size = 16
        o.val = 10
        let out = root.appendingPathComponent("data")
        _ = try DataPrep.imagenette(source: archive, output: out, options: o)
        let index = try DatasetIndex.load(directory: out)
        XCTAssertEqual(index.dataset, "imagenette")
        XCTAssertEqual(index.imageSize, [16, 16, 3])
        XCTAssertEqual(index.splits["train"]?.count, 20)
        XCTAssertEqual(index.splits["val"]?.count, 10)
        XCTAssertEqual(index.splits["test"]?.count, 30, "the official val is the test split")
        let loader = try ShardLoader(directory: out, split: "test", options: LoaderOptions(seed: 0))
        XCTAssertEqual(loader.classNames.first, "tench")
        XCTAssertEqual(loader.classNames.count, 10)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: root.path).filter { $0.contains(".tmp.") }
        XCTAssertEqual(leftovers, [], "the extraction folder is removed")
    }

    func testArchivesThatAreNotImagenette() throws {
        let root = Fixtures.tempDir("ffnette-bad")
        defer { try? FileManager.default.removeItem(at: root) }
        let missing = root.appendingPathComponent("nine.tgz")
        Fixtures.writeTarGz(missing, files: archiveFiles(perClass: 1, skip: "n03888605"))
        XCTAssertThrowsError(try DataPrep.imagenette(source: missing, output: root.appendingPathComponent("a"),
                                                     options: Fixtures.quiet)) { e in
            XCTAssertTrue("\(e)".contains("n03888605"), "\(e)")
        }
        let evil = root.appendingPathComponent("evil.tgz")
        Fixtures.writeTarGz(evil, files: [("imagenette2-160/../../escape.JPEG", [1, 2, 3])])
        XCTAssertThrowsError(try DataPrep.imagenette(source: evil, output: root.appendingPathComponent("b"),
                                                     options: Fixtures.quiet)) { e in
            XCTAssertTrue("\(e)".contains("outside"), "\(e)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: root.deletingLastPathComponent()
            .appendingPathComponent("escape.JPEG").path))
    }
}
