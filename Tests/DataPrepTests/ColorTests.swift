import FFIO
import XCTest

/// The colour augmentation kernels against per-pixel references of torchvision's tensor ops.
final class ColorTests: XCTestCase {
    let (h, w) = (3, 4)

    func image(seed: UInt64) -> [Float] {
        var s = seed
        return (0..<(3 * 12)).map { _ in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return Float(s >> 40) / Float(1 << 24)
        }
    }

    func jitter(_ x: [Float], order: [Int32], factors: [Float], c: Int32 = 3) -> [Float] {
        var y = x
        ffio_color_jitter(&y, c, Int32(h), Int32(w), order, factors)
        return y
    }

    func testIdentityFactorsLeaveTheImage() {
        let x = image(seed: 1)
        XCTAssertEqual(jitter(x, order: [0, 1, 2, 3], factors: [1, 1, 1, 0]), x)
    }

    func testBrightnessContrastSaturation() {
        let x = image(seed: 2), hw = h * w
        let b = jitter(x, order: [0, 1, 2, 3], factors: [1.3, 1, 1, 0])
        for i in 0..<x.count { XCTAssertEqual(b[i], min(1, x[i] * 1.3), accuracy: 1e-6) }
        let luma = (0..<hw).map { 0.2989 * Double(x[$0]) + 0.587 * Double(x[hw + $0]) + 0.114 * Double(x[2 * hw + $0]) }
        let mean = luma.reduce(0, +) / Double(hw)
        let c = jitter(x, order: [1, 0, 2, 3], factors: [1, 0.6, 1, 0])
        for i in 0..<x.count { XCTAssertEqual(Double(c[i]), min(1, max(0, 0.6 * Double(x[i]) + 0.4 * mean)), accuracy: 1e-6) }
        let s = jitter(x, order: [2, 0, 1, 3], factors: [1, 1, 1.4, 0])
        for i in 0..<x.count {
            XCTAssertEqual(Double(s[i]), min(1, max(0, 1.4 * Double(x[i]) - 0.4 * luma[i % hw])), accuracy: 1e-6)
        }
    }

    func testHueShiftsThroughHSV() {
        // Pure red shifted by a third of a turn is pure green; by 0 it is unchanged.
        var px: [Float] = [1, 0, 0]   // 1x1 RGB
        ffio_color_jitter(&px, 3, 1, 1, [3, 0, 1, 2], [1, 1, 1, 1.0 / 3])
        XCTAssertEqual(px[0], 0, accuracy: 1e-5)
        XCTAssertEqual(px[1], 1, accuracy: 1e-5)
        XCTAssertEqual(px[2], 0, accuracy: 1e-5)
        // (0.2, 0.4, 0.8): h = 0.6111, s = 0.75, v = 0.8; +0.1 turn -> h = 0.7111 ->
        // (0.36, 0.2, 0.8) (colorsys.hsv_to_rgb).
        var q: [Float] = [0.2, 0.4, 0.8]
        ffio_color_jitter(&q, 3, 1, 1, [3, 0, 1, 2], [1, 1, 1, 0.1])
        XCTAssertEqual(q[0], 0.36, accuracy: 1e-4)
        XCTAssertEqual(q[1], 0.2, accuracy: 1e-4)
        XCTAssertEqual(q[2], 0.8, accuracy: 1e-4)
        // Gray pixels have no hue.
        var g: [Float] = [0.5, 0.5, 0.5]
        ffio_color_jitter(&g, 3, 1, 1, [3, 0, 1, 2], [1, 1, 1, -0.1])
        XCTAssertEqual(g, [0.5, 0.5, 0.5])
    }

    func testOneChannelIgnoresSaturationAndHue() {
        let x = Array(image(seed: 3).prefix(h * w))
        XCTAssertEqual(jitter(x, order: [2, 3, 0, 1], factors: [1, 1, 0.5, 0.1], c: 1), x)
    }

    func testGrayscaleAndRMSScale() {
        var x = image(seed: 4)
        let hw = h * w
        let luma = (0..<hw).map { 0.2989 * x[$0] + 0.587 * x[hw + $0] + 0.114 * x[2 * hw + $0] }
        ffio_grayscale(&x, 3, Int32(h), Int32(w))
        for c in 0..<3 { for i in 0..<hw { XCTAssertEqual(x[c * hw + i], luma[i], accuracy: 1e-6) } }
        var v: [Float] = [3, 4]
        ffio_rms_scale(&v, 2, 0)
        let r = Float((12.5).squareRoot())
        XCTAssertEqual(v[0], 3 / r, accuracy: 1e-6)
        XCTAssertEqual(v[1], 4 / r, accuracy: 1e-6)
    }
}
