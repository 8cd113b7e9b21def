import FFEngine
import FFIO
import Foundation
import XCTest

@testable import DataPrep

/// Hostile and damaged image files at the FFIO level: decompression bombs, truncation that
/// libjpeg only warns about, size caps, and the streaming prep path against the reference
/// (whole decode, then resize).
final class DecoderHardeningTests: XCTestCase {
    func bytes(_ url: URL) -> [UInt8] { Array(FileManager.default.contents(atPath: url.path) ?? Data()) }

    func jpeg(_ dir: URL, _ name: String, w: Int, h: Int, progressive: Bool = false, subsampling: Int32 = 2,
              gray: Bool = false, quality: Int32 = 90) -> URL {
        let url = dir.appendingPathComponent(name)
        let px = Fixtures.smoothImage(w, h, seed: w + h)
        let pixels = gray ? stride(from: 0, to: px.count, by: 3).map { px[$0] } : px
        XCTAssertEqual(ffio_jpeg_write_ex(url.path, pixels, Int32(w), Int32(h), gray ? 1 : 3, quality,
                                          progressive ? 1 : 0, subsampling), 0, String(cString: ffio_last_error()))
        return url
    }

    /// Decodes bytes in memory through both paths; returns the two error texts (nil = decoded).
    func decodeErrors(_ b: [UInt8], size: Int32 = 16, maxPixels: UInt64 = 0) -> (whole: String?, prep: String?) {
        var lim = ffio_image_limits(max_pixels: maxPixels, max_file_bytes: 0)
        var err = [CChar](repeating: 0, count: 512)
        var img = ffio_image()
        let a = ffio_image_decode(b, b.count, 0, &lim, &img, &err, err.count)
        let whole = a == 0 ? nil : String(cString: err)
        if a == 0 { ffio_free(img.pixels) }
        var out = [UInt8](repeating: 0, count: Int(size * size * 3))
        let p = ffio_image_prepare_mem(b, b.count, size, &lim, &out, nil, nil, &err, err.count)
        return (whole, p == 0 ? nil : String(cString: err))
    }

    /// Offset of the first SOFn marker's height field.
    func sofOffset(_ b: [UInt8]) -> Int? {
        var i = 2
        while i + 9 < b.count {
            guard b[i] == 0xFF else { return nil }
            let marker = b[i + 1]
            let len = Int(b[i + 2]) << 8 | Int(b[i + 3])
            if [0xC0, 0xC1, 0xC2].contains(marker) { return i + 5 }
            i += 2 + len
        }
        return nil
    }

    func testJPEGBombsAreRefusedBeforeAllocation() throws {
        let dir = Fixtures.scratch(self)
        for progressive in [false, true] {
            var b = bytes(jpeg(dir, "small.jpg", w: 16, h: 16, progressive: progressive))
            let at = try XCTUnwrap(sofOffset(b))
            b.replaceSubrange(at..<at + 4, with: [0xFF, 0xDC, 0xFF, 0xDC])  // 65500 x 65500
            XCTAssertLessThan(b.count, 2000)
            let start = Date()
            let (whole, prep) = decodeErrors(b)
            for e in [whole, prep] {
                let text = try XCTUnwrap(e)
                XCTAssertTrue(text.contains("65500x65500") && text.contains("limit of 89478485"), text)
                XCTAssertTrue(text.contains("--max-image-pixels"), text)
            }
            XCTAssertLessThan(Date().timeIntervalSince(start), 1)
            // Allowed by a raised limit, the missing data is still an error, found at once;
            // the streamed (DCT-scaled) baseline decode holds a few rows only.
            if !progressive {
                let raised = decodeErrors(b, size: 16, maxPixels: 1 << 33).prep
                XCTAssertTrue(raised?.contains("JPEG") == true, raised ?? "decoded")
            }
        }
    }

    func testPNGBombIsRefused() throws {
        let dir = Fixtures.scratch(self)
        let url = dir.appendingPathComponent("p.png")
        Fixtures.writePNG(url, [UInt8](repeating: 7, count: 64), 8, 8, colorType: 0)
        var b = bytes(url)
        // IHDR data starts at 16: width, height (big-endian), then its CRC at 29.
        b.replaceSubrange(16..<24, with: Fixtures.bigEndian(32767) + Fixtures.bigEndian(32767))
        b.replaceSubrange(29..<33, with: Fixtures.bigEndian(Int(Fixtures.crc32(Array(b[12..<29])))))
        let (whole, prep) = decodeErrors(b)
        for e in [whole, prep] {
            let text = try XCTUnwrap(e)
            XCTAssertTrue(text.contains("PNG declares 32767x32767"), text)
        }
    }

    func testPixelLimitFlagRaisesAndLowersTheBound() throws {
        let dir = Fixtures.scratch(self)
        let b = bytes(jpeg(dir, "a.jpg", w: 100, h: 80))
        XCTAssertNil(decodeErrors(b).prep)
        XCTAssertTrue(decodeErrors(b, maxPixels: 7999).prep?.contains("100x80 = 8000 pixels, more than the limit of 7999") == true)
        XCTAssertNil(decodeErrors(b, maxPixels: 8000).prep)
    }

    func testTruncatedJPEGsEvenWithEOIAreErrors() throws {
        let dir = Fixtures.scratch(self)
        for progressive in [false, true] {
            let b = bytes(jpeg(dir, "t.jpg", w: 96, h: 64, progressive: progressive))
            for keep in [b.count / 3, b.count / 2, b.count * 3 / 4, b.count - 40] {
                for withEOI in [false, true] {
                    let cut = Array(b.prefix(keep)) + (withEOI ? [0xFF, 0xD9] : [])
                    let (whole, prep) = decodeErrors(cut)
                    XCTAssertNotNil(whole, "progressive \(progressive), \(keep) of \(b.count) bytes, EOI \(withEOI)")
                    XCTAssertNotNil(prep, "progressive \(progressive), \(keep) of \(b.count) bytes, EOI \(withEOI)")
                }
            }
            XCTAssertNil(decodeErrors(b).whole)
        }
    }

    func testCorruptJPEGDataIsAnErrorNotAGrayImage() throws {
        let dir = Fixtures.scratch(self)
        var b = bytes(jpeg(dir, "c.jpg", w: 64, h: 64))
        // A restart marker in the middle of a file without restart intervals: libjpeg warns
        // ("Corrupt JPEG data") and fills the rest with gray.
        b.replaceSubrange(b.count / 2..<b.count / 2 + 2, with: [0xFF, 0xD3])
        let (whole, prep) = decodeErrors(b)
        for e in [whole, prep] {
            let text = try XCTUnwrap(e)
            XCTAssertTrue(text.contains("damaged") || text.contains("Corrupt"), text)
        }
    }

    func testLargeFilesAreRefusedWithoutReading() throws {
        let dir = Fixtures.scratch(self)
        // A 16 GB sparse file named .png (no disk space used).
        let url = dir.appendingPathComponent("huge.png")
        XCTAssertTrue(FileManager.default.createFile(atPath: url.path, contents: Data([0x89, 0x50, 0x4E, 0x47])))
        let fd = open(url.path, O_WRONLY)
        XCTAssertEqual(ftruncate(fd, 16 << 30), 0)
        close(fd)
        var err = [CChar](repeating: 0, count: 512)
        var out = [UInt8](repeating: 0, count: 16 * 16 * 3)
        XCTAssertEqual(ffio_image_prepare(url.path, 16, nil, &out, nil, nil, &err, err.count), -1)
        XCTAssertTrue(String(cString: err).contains("larger than the 1073741824-byte limit"), String(cString: err))
        // A directory or a missing file named like an image is an error too.
        XCTAssertEqual(ffio_image_prepare(dir.path, 16, nil, &out, nil, nil, &err, err.count), -1)
        XCTAssertTrue(String(cString: err).contains("not a regular file"), String(cString: err))
        // And gzip bombs stop at the cap of ffio_read_file.
        let gz = dir.appendingPathComponent("zeros.gz")
        let zeros = [UInt8](repeating: 0, count: 4 << 20)
        XCTAssertEqual(ffio_gzip_write(gz.path, zeros, zeros.count), 0)
        var data: UnsafeMutablePointer<UInt8>? = nil
        var len = 0
        XCTAssertEqual(ffio_read_file(gz.path, 1 << 20, &data, &len), -1)
        XCTAssertTrue(String(cString: ffio_last_error()).contains("more than 1048576 bytes"), String(cString: ffio_last_error()))
        XCTAssertEqual(ffio_read_file(gz.path, 8 << 20, &data, &len), 0)
        XCTAssertEqual(len, zeros.count)
        ffio_free(data)
    }

    /// The streaming path (DCT scaling, column crop, row skipping, resize while decoding)
    /// gives exactly the bytes of a whole decode followed by the resize.
    func testStreamedPrepEqualsWholeDecodeThenResize() throws {
        let dir = Fixtures.scratch(self)
        var files: [URL] = []
        for (i, (w, h)) in [(401, 299), (333, 517), (97, 61), (600, 450), (1000, 37), (48, 48)].enumerated() {
            for sub in Int32(0)...2 {
                files.append(jpeg(dir, "j\(i)_\(sub).jpg", w: w, h: h, progressive: (i + Int(sub)) % 2 == 0, subsampling: sub))
            }
            files.append(jpeg(dir, "g\(i).jpg", w: w, h: h, progressive: i % 2 == 1, gray: true))
            let px = Fixtures.smoothImage(w, h, seed: i)
            let png = dir.appendingPathComponent("p\(i).png")
            XCTAssertEqual(ffio_png_write_ex(png.path, px, Int32(w), Int32(h), 2, 8, nil, 0, Int32(i % 2)), 0)
            let gray = stride(from: 0, to: px.count, by: 3).map { px[$0] }
            let pg = dir.appendingPathComponent("pg\(i).png")
            XCTAssertEqual(ffio_png_write_ex(pg.path, gray, Int32(w), Int32(h), 0, 8, nil, 0, 0), 0)
            files += [png, pg]
        }
        for url in files {
            for size in [16, 37, 64, 256] {
                var err = [CChar](repeating: 0, count: 512)
                var img = ffio_image()
                XCTAssertEqual(ffio_image_load(url.path, Int32(size), nil, &img, &err, err.count), 0, String(cString: err))
                var ref = [UInt8](repeating: 0, count: size * size * 3)
                XCTAssertEqual(ffio_resize_center_crop(img.pixels, img.width, img.height, 3, Int32(size), &ref), 0)
                ffio_free(img.pixels)
                var got = [UInt8](repeating: 1, count: size * size * 3)
                var sw: Int32 = 0, sh: Int32 = 0
                XCTAssertEqual(ffio_image_prepare(url.path, Int32(size), nil, &got, &sw, &sh, &err, err.count), 0, String(cString: err))
                XCTAssertEqual(got, ref, "\(url.lastPathComponent) at \(size)")
                XCTAssertEqual(sw, img.src_width)
                XCTAssertEqual(sh, img.src_height)
            }
        }
    }

    /// The vector path of the resampler (RGB, not mirrored) and the scalar one (used when
    /// mirroring) agree byte for byte.
    func testVectorAndScalarResampleAgree() throws {
        var rng = SeededRandom(seed: 5, stream: "resample")
        for (sw, sh, dw, dh) in [(300, 300, 256, 256), (64, 40, 17, 33), (10, 10, 40, 25), (400, 300, 7, 7)] {
            let src = (0..<(sw * sh * 3)).map { _ in UInt8(rng.next() & 255) }
            var a = [UInt8](repeating: 0, count: dw * dh * 3), b = a
            XCTAssertEqual(ffio_resample(src, Int32(sw), Int32(sh), 3, 1.5, 0.25, Double(sw) - 3, Double(sh) - 1, &a,
                                         Int32(dw), Int32(dh), 0), 0)
            XCTAssertEqual(ffio_resample(src, Int32(sw), Int32(sh), 3, 1.5, 0.25, Double(sw) - 3, Double(sh) - 1, &b,
                                         Int32(dw), Int32(dh), 1), 0)
            for y in 0..<dh {
                for x in 0..<dw {
                    XCTAssertEqual(a[(y * dw + x) * 3..<(y * dw + x) * 3 + 3].map { $0 },
                                   b[(y * dw + dw - 1 - x) * 3..<(y * dw + dw - 1 - x) * 3 + 3].map { $0 })
                }
            }
        }
    }

    /// The vector channel sums equal the obvious loop for every channel count and tail.
    func testChannelSumsAreExact() {
        var rng = SeededRandom(seed: 9, stream: "sums")
        for c in 1...4 {
            for pixels in [0, 1, 5, 16, 17, 100, 4099] {
                let px = (0..<(pixels * c)).map { _ in UInt8(rng.next() & 255) }
                var sum = [UInt64](repeating: 0, count: c), sq = sum
                ffio_channel_sums(px, Int64(pixels), Int32(c), &sum, &sq)
                var rs = [UInt64](repeating: 0, count: c), rq = rs
                for (i, v) in px.enumerated() {
                    rs[i % c] += UInt64(v)
                    rq[i % c] += UInt64(v) * UInt64(v)
                }
                XCTAssertEqual(sum, rs, "c \(c), \(pixels) pixels")
                XCTAssertEqual(sq, rq, "c \(c), \(pixels) pixels")
            }
        }
    }
}
