import FFCore
import XCTest

/// Softmax cross-entropy (loss, gradient, correct count, non-finite handling), top-k
/// accuracy and row argmax.
final class LossTests: XCTestCase {
    private struct XentResult: Equatable {
        var loss: UInt64
        var dlogits: [UInt32]
        var correct: Int32
    }

    /// Every SIMD level with 1 and 3 threads; the results must agree bit for bit.
    private func xent(_ logits: [Float], _ labels: [Int32], n: Int, k: Int, scale: Float,
                      file: StaticString = #filePath, line: UInt = #line) -> (Double, [Float], Int) {
        var first: XentResult?
        for threads: Int32 in [1, 3] {
            forEachSIMDLevel(threads: threads) { ctx, level in
                var d = [Float](repeating: .nan, count: n * k)
                var correct: Int32 = -1
                let loss = ff_softmax_xent(ctx, Int32(n), Int32(k), logits, labels, scale, &d, &correct)
                let r = XentResult(loss: loss.bitPattern, dlogits: d.map(\.bitPattern), correct: correct)
                if let f = first {
                    XCTAssert(f == r || (loss.isNaN && Double(bitPattern: f.loss).isNaN),
                              "xent \(n)x\(k): \(level) with \(threads) threads differs", file: file, line: line)
                } else {
                    first = r
                }
            }
        }
        let f = first!
        return (Double(bitPattern: f.loss), f.dlogits.map(Float.init(bitPattern:)), Int(f.correct))
    }

    private func reference(_ logits: [Double], _ labels: [Int32], n: Int, k: Int, scale: Double)
        -> (loss: Double, d: [Double], correct: Int) {
        var loss = 0.0, correct = 0
        var d = [Double](repeating: 0, count: n * k)
        for i in 0..<n {
            let row = Array(logits[i * k..<(i + 1) * k])
            let mx = row.max()!
            let sum = row.reduce(0) { $0 + exp($1 - mx) }
            let y = Int(labels[i])
            loss += mx + log(sum) - row[y]
            if row.firstIndex(of: mx)! == y { correct += 1 }
            for j in 0..<k { d[i * k + j] = (exp(row[j] - mx) / sum - (j == y ? 1 : 0)) * scale }
        }
        return (loss / Double(n), d, correct)
    }

    func testMatchesReference() {
        for (n, k) in [(1, 1), (1, 7), (5, 3), (7, 10), (128, 100), (300, 1000)] {
            let logits = randomFloats(n * k, seed: UInt64(n * k), lo: -4, hi: 4)
            let labels = randomLabels(n, classes: k, seed: UInt64(n + k))
            let scale = 1 / Float(n)
            let (loss, d, correct) = xent(logits, labels, n: n, k: k, scale: scale)
            let ref = reference(logits.doubles, labels, n: n, k: k, scale: Double(scale))
            XCTAssertEqual(loss, ref.loss, accuracy: 1e-12 * max(1, ref.loss), "loss \(n)x\(k)")
            assertClose(d, ref.d, rtol: 1e-5, atol: 1e-8, "dlogits \(n)x\(k)")
            XCTAssertEqual(correct, ref.correct, "correct \(n)x\(k)")
        }
    }

    /// Optional outputs may be NULL, and grad_scale scales the gradient only.
    func testOptionalOutputsAndScale() {
        let n = 6, k = 5
        let logits = randomFloats(n * k, seed: 3, lo: -2, hi: 2)
        let labels = randomLabels(n, classes: k, seed: 4)
        let ctx = ff_ctx_create(2)!
        defer { ff_ctx_destroy(ctx) }
        var d1 = [Float](repeating: 0, count: n * k), d2 = d1
        var c: Int32 = 0
        let l1 = ff_softmax_xent(ctx, Int32(n), Int32(k), logits, labels, 1, &d1, &c)
        let l2 = ff_softmax_xent(ctx, Int32(n), Int32(k), logits, labels, 0.25, &d2, nil)
        let l3 = ff_softmax_xent(ctx, Int32(n), Int32(k), logits, labels, 1, nil, nil)
        XCTAssertEqual(l1, l2)
        XCTAssertEqual(l1, l3)
        assertClose(d2, d1.map { Double($0) * 0.25 }, rtol: 1e-6, atol: 0, "grad_scale")
        // Each row of (softmax - onehot) sums to zero.
        for i in 0..<n { XCTAssertEqual(d1[i * k..<(i + 1) * k].reduce(0, +), 0, accuracy: 1e-6) }
    }

    func testStableForLargeLogits() {
        let logits: [Float] = [1000, -1000, 999, 88, 89, 90, -1e30, 0, 1e30]
        let labels: [Int32] = [0, 1, 0]
        let (loss, d, correct) = xent(logits, labels, n: 3, k: 3, scale: 1)
        let ref = reference(logits.doubles, labels, n: 3, k: 3, scale: 1)
        XCTAssert(loss.isFinite)
        XCTAssertEqual(loss, ref.loss, accuracy: 1e-9 * ref.loss)
        assertClose(d, ref.d, rtol: 1e-5, atol: 1e-7, "large logits")
        XCTAssertEqual(correct, 1)
    }

    func testNonFiniteLogitGivesNaN() {
        for bad in [Float.nan, .infinity, -.infinity] {
            var logits = randomFloats(4 * 3, seed: 5)
            logits[7] = bad // row 2, not the label column necessarily
            let (loss, _, _) = xent(logits, [0, 1, 2, 0], n: 4, k: 3, scale: 0.25)
            XCTAssert(loss.isNaN, "logit \(bad) must give NaN")
        }
    }

    func testGradient() {
        let n = 4, k = 6
        let logits = randomFloats(n * k, seed: 6, lo: -2, hi: 2)
        let labels = randomLabels(n, classes: k, seed: 7)
        let (_, d, _) = xent(logits, labels, n: n, k: k, scale: 1 / Float(n))
        assertGradient(d, at: logits.doubles, "softmax xent") { xs in
            reference(xs, labels, n: n, k: k, scale: 1).loss
        }
    }

    func testCorrectCountUsesFirstMaximum() {
        let logits: [Float] = [1, 3, 3, 1, 3, 3, 5, 5, 5]
        let (_, _, correct) = xent(logits, [1, 2, 0], n: 3, k: 3, scale: 1)
        XCTAssertEqual(correct, 2) // row 0: label 1 is the first max; row 1: label 2 is not
    }

    func testArgmaxRows() {
        let x: [Float] = [1, 3, 3, -1, -2, -0.5, 7, 7, 7, 0, 0, 1]
        var out = [Int32](repeating: -1, count: 4)
        ff_argmax_rows(4, 3, x, &out)
        XCTAssertEqual(out, [1, 2, 0, 2])
        let big = randomFloats(50 * 37, seed: 8)
        var got = [Int32](repeating: -1, count: 50)
        ff_argmax_rows(50, 37, big, &got)
        for i in 0..<50 {
            let row = Array(big[i * 37..<(i + 1) * 37])
            XCTAssertEqual(Int(got[i]), row.firstIndex(of: row.max()!)!)
        }
    }

    func testTopK() {
        let n = 200, k = 20
        // Coarse values, so ties are common and the tie rule matters.
        let logits = randomFloats(n * k, seed: 9).map { ($0 * 4).rounded() }
        let labels = randomLabels(n, classes: k, seed: 10)
        for topk in [1, 3, 5, 20] {
            var expected = 0
            for i in 0..<n {
                let order = (0..<k).sorted { a, b in
                    let va = logits[i * k + a], vb = logits[i * k + b]
                    return va != vb ? va > vb : a < b
                }
                if order.prefix(topk).contains(Int(labels[i])) { expected += 1 }
            }
            XCTAssertEqual(Int(ff_topk_correct(Int32(n), Int32(k), logits, labels, Int32(topk))), expected, "top-\(topk)")
        }
        // Top-1 with ties broken by index agrees with the argmax count.
        let ctx = ff_ctx_create(1)!
        defer { ff_ctx_destroy(ctx) }
        var c: Int32 = 0
        _ = ff_softmax_xent(ctx, Int32(n), Int32(k), logits, labels, 1, nil, &c)
        XCTAssertEqual(ff_topk_correct(Int32(n), Int32(k), logits, labels, 1), c)
    }
}
