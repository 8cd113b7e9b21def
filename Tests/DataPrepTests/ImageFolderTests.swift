import FFEngine
import FFIO
import Foundation
import XCTest

@testable import DataPrep

/// PNG/JPEG trees: decoding variants, resizing, bad files, layouts.
final class ImageFolderTests: XCTestCase {
    /// ROOT/a, ROOT/b with 16x16 images of every PNG kind plus JPEGs and bad files.
    func makeTree() -> (root: URL, expected: [String: [UInt8]]) {
        let root = Fixtures.tempDir()
        let a = root.appendingPathComponent("a"), b = root.appendingPathComponent("b")
        for d in [a, b] { try! FileManager.default.createDirectory(at: d, withIntermediateDirectories: true) }
        var expected: [String: [UInt8]] = [:]
        let rgb = (0..<(16 * 16 * 3)).map { UInt8(($0 * 37) & 255) }
        Fixtures.writePNG(a.appendingPathComponent("rgb.png"), rgb, 16, 16)
        expected["a/rgb.png"] = rgb
        let gray = (0..<256).map { UInt8($0) }
        Fixtures.writePNG(a.appendingPathComponent("gray.png"), gray, 16, 16, colorType: 0)
        expected["a/gray.png"] = gray.flatMap { [$0, $0, $0] }
        let palette: [UInt8] = [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30]
        let indices = (0..<256).map { UInt8($0 % 4) }
        Fixtures.writePNG(b.appendingPathComponent("palette.png"), indices, 16, 16, colorType: 3, palette: palette)
        expected["b/palette.png"] = indices.flatMap { Array(palette[Int($0) * 3..<Int($0) * 3 + 3]) }
        let deep = (0..<(16 * 16 * 3)).map { UInt16(($0 * 2741) & 0xFFFF) }
        Fixtures.writePNG(b.appendingPathComponent("deep.PNG"), deep.flatMap { [UInt8($0 >> 8), UInt8($0 & 255)] }, 16, 16, bitDepth: 16)
        expected["b/deep.PNG"] = deep.map { UInt8((Double($0) * 255 / 65535).rounded()) }
        let rgba = (0..<(16 * 16 * 4)).map { UInt8(($0 * 11) & 255) }
        Fixtures.writePNG(a.appendingPathComponent("rgba.png"), rgba, 16, 16, colorType: 6)
        expected["a/rgba.png"] = (0..<256).flatMap { Array(rgba[$0 * 4..<$0 * 4 + 3]) }
        let grayPhoto = (0..<256).map { UInt8(100 + ($0 % 16) * 4) }
        XCTAssertEqual(ffio_jpeg_write(b.appendingPathComponent("grayphoto.jpg").path, grayPhoto, 16, 16, 1, 95), 0)
        expected["b/grayphoto.jpg"] = grayPhoto.flatMap { [$0, $0, $0] }
        let smooth = Fixtures.smoothImage(16, 16, seed: 1)
        Fixtures.writeJPEG(b.appendingPathComponent("photo.JPEG"), smooth, 16, 16)
        expected["b/photo.JPEG"] = smooth
        // Bad files: a truncated JPEG and text named .jpg; a .txt file is ignored.
        Fixtures.writeJPEG(a.appendingPathComponent("cut.jpg"), Fixtures.smoothImage(16, 16, seed: 2), 16, 16)
        let cut = FileManager.default.contents(atPath: a.appendingPathComponent("cut.jpg").path)!
        try! cut.prefix(cut.count / 2).write(to: a.appendingPathComponent("cut.jpg"))
        try! Data("not an image".utf8).write(to: b.appendingPathComponent("fake.jpg"))
        try! Data("notes".utf8).write(to: b.appendingPathComponent("notes.txt"))
        return (root, expected)
    }

    func testDecodingVariantsBadFilesAndReport() throws {
        let (root, expected) = makeTree()
        let out = Fixtures.tempDir()
        var o = Fixtures.quiet
        o.size = 16
        o.val = 0
        o.maxBad = 0.5
        let r = try DataPrep.imageFolder(source: root, output: out, options: o)
        XCTAssertEqual(r.index.labelSets["labels"], ["a", "b"])
        XCTAssertEqual(r.index.splits["train"]?.count, 7)
        XCTAssertEqual(r.skipped.map(\.path), ["a/cut.jpg", "b/fake.jpg"])
        XCTAssertTrue(r.skipped[0].reason.contains("truncated"), r.skipped[0].reason)
        XCTAssertTrue(r.skipped[1].reason.contains("not a PNG or JPEG"), r.skipped[1].reason)
        let train = try Fixtures.readSplit(out, "train")
        // Sorted: a/cut (bad), a/gray, a/rgb, a/rgba, b/deep.PNG, b/fake (bad), b/grayphoto, b/palette, b/photo.
        let order = ["a/gray.png", "a/rgb.png", "a/rgba.png", "b/deep.PNG", "b/grayphoto.jpg", "b/palette.png", "b/photo.JPEG"]
        XCTAssertEqual(train.labels, [0, 0, 0, 1, 1, 1, 1])
        for (i, name) in order.enumerated() {
            let got = Array(train.images[i * 768..<(i + 1) * 768])
            if name.hasSuffix("JPEG") || name.hasSuffix("jpg") {
                XCTAssertGreaterThan(Fixtures.psnr(got, expected[name]!), 32, name)
            } else {
                XCTAssertEqual(got, expected[name]!, name)
            }
        }
        // The report is also stored with the shard it belongs to.
        let shard = try HDF5File(out.appendingPathComponent("train-00000.h5"))
        XCTAssertTrue(try shard.stringAttribute("skipped").contains("a/cut.jpg"))
    }

    func testTooManyBadFilesFailsWithoutIndex() throws {
        let (root, _) = makeTree()
        let out = Fixtures.tempDir()
        var o = Fixtures.quiet
        o.size = 16
        o.val = 0
        XCTAssertThrowsError(try DataPrep.imageFolder(source: root, output: out, options: o)) { e in
            let text = "\(e)"
            XCTAssertTrue(text.contains("2 of 9 images"), text)
            XCTAssertTrue(text.contains("--max-bad"), text)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("index.json").path))
    }

    func testDownscaleUsesDCTScalingAndStaysClose() throws {
        let root = Fixtures.tempDir()
        let cls = root.appendingPathComponent("c")
        try FileManager.default.createDirectory(at: cls, withIntermediateDirectories: true)
        let big = Fixtures.smoothImage(256, 320, seed: 3)
        Fixtures.writeJPEG(cls.appendingPathComponent("big.jpg"), big, 256, 320)
        Fixtures.writePNG(cls.appendingPathComponent("big.png"), big, 256, 320)
        // The JPEG decodes at 1/4 scale (64 x 80) when 64 is requested.
        var img = ffio_image()
        var err = [CChar](repeating: 0, count: 256)
        XCTAssertEqual(ffio_image_load(cls.appendingPathComponent("big.jpg").path, 64, nil, &img, &err, 256), 0)
        XCTAssertEqual([img.width, img.height, img.src_width, img.src_height], [64, 80, 256, 320])
        ffio_free(img.pixels)
        let out = Fixtures.tempDir()
        var o = Fixtures.quiet
        o.size = 64
        o.val = 0
        _ = try DataPrep.imageFolder(source: root, output: out, options: o)
        let train = try Fixtures.readSplit(out, "train")
        // Reference: 4x4 box average of the original center 256x256 (rows 32..<288).
        var ref = [UInt8](repeating: 0, count: 64 * 64 * 3)
        for y in 0..<64 {
            for x in 0..<64 {
                for c in 0..<3 {
                    var s = 0
                    for dy in 0..<4 { for dx in 0..<4 { s += Int(big[((32 + 4 * y + dy) * 256 + 4 * x + dx) * 3 + c]) } }
                    ref[(y * 64 + x) * 3 + c] = UInt8((Double(s) / 16).rounded())
                }
            }
        }
        let jpg = Array(train.images[0..<12288]), png = Array(train.images[12288..<24576])
        XCTAssertGreaterThan(Fixtures.psnr(png, ref), 35)
        XCTAssertGreaterThan(Fixtures.psnr(jpg, ref), 30)
    }

    func testSplitLayoutAndWrongSource() throws {
        let root = Fixtures.tempDir()
        for split in ["train", "val"] {
            for cls in ["x", "y"] {
                let d = root.appendingPathComponent("\(split)/\(cls)")
                try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
                for i in 0..<(split == "train" ? 5 : 2) {
                    Fixtures.writePNG(d.appendingPathComponent("\(i).png"), Fixtures.smoothImage(12, 8, seed: i), 12, 8)
                }
            }
        }
        var o = Fixtures.quiet
        o.size = 8
        o.val = 2
        let r = try DataPrep.imageFolder(source: root, output: Fixtures.tempDir(), options: o)
        XCTAssertEqual(r.index.splits.mapValues(\.count), ["train": 8, "val": 2, "test": 4])
        XCTAssertEqual(r.index.imageSize, [8, 8, 3])

        XCTAssertThrowsError(try DataPrep.imageFolder(source: root.appendingPathComponent("train/x"), output: Fixtures.tempDir(), options: o)) { e in
            let text = "\(e)"
            XCTAssertTrue(text.contains("Expected: ROOT/<class>/*.{png,jpg,jpeg}"), text)
            XCTAssertTrue(text.contains("Found: a directory with 0.png, 1.png"), text)
        }
    }

    func testImageNet100ListMatchesTheFile() throws {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../data-prep/imagenet100.txt")
        let text = try String(contentsOf: file, encoding: .utf8)
        XCTAssertEqual(text.split(whereSeparator: \.isNewline).map(String.init), ImageNet100.classes)
    }

    func testImageNet100ReportsMissingClasses() throws {
        let root = Fixtures.tempDir()
        try FileManager.default.createDirectory(at: root.appendingPathComponent("train/n01749939"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: root.appendingPathComponent("val"), withIntermediateDirectories: true)
        XCTAssertThrowsError(try DataPrep.imagenet100(source: root, output: Fixtures.tempDir(), options: Fixtures.quiet)) { e in
            let text = "\(e)"
            XCTAssertTrue(text.contains("train/ lacks 99 of the 100 ImageNet-100 classes"), text)
        }
    }
}
