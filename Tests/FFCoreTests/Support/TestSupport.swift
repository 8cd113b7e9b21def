import FFCore
import XCTest

/// Shared helpers for the kernel tests: deterministic random data, comparisons against
/// double-precision references, and central finite differences.

/// Deterministic pseudo-random generator for test data (independent of FFCore's RNG, so a
/// bug there cannot hide a bug elsewhere).
struct TestRNG {
    var state: UInt64
    init(_ seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }
    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
    mutating func uniform(_ lo: Double = -1, _ hi: Double = 1) -> Double {
        lo + (hi - lo) * Double(next() >> 11) / Double(1 << 53)
    }
    mutating func int(_ upper: Int) -> Int { Int(next() % UInt64(upper)) }
}

func randomFloats(_ count: Int, seed: UInt64, lo: Double = -1, hi: Double = 1) -> [Float] {
    var r = TestRNG(seed)
    return (0..<count).map { _ in Float(r.uniform(lo, hi)) }
}

func randomLabels(_ count: Int, classes: Int, seed: UInt64) -> [Int32] {
    var r = TestRNG(seed)
    return (0..<count).map { _ in Int32(r.int(classes)) }
}

/// Patch i of p along an axis of `size` cells, as the goodness kernels define it:
/// adaptive_avg_pool2d bins [floor(i*size/p), ceil((i+1)*size/p)), or floor bins
/// [i*f, (i+1)*f) with f = floor(size/p).
func goodnessBin(_ i: Int, _ size: Int, _ p: Int, floor: Bool = false) -> Range<Int> {
    floor ? (i * (size / p))..<((i + 1) * (size / p)) : (i * size / p)..<(((i + 1) * size + p - 1) / p)
}

/// Asserts |a - e| <= atol + rtol * |e| elementwise, reporting the worst index.
func assertClose(_ actual: [Float], _ expected: [Double], rtol: Double = 1e-4, atol: Double = 1e-5,
                 _ what: String = "", file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.count, expected.count, "\(what): length", file: file, line: line)
    guard actual.count == expected.count else { return }
    var worst = -1
    var worstExcess = 0.0
    for i in 0..<actual.count {
        let err = abs(Double(actual[i]) - expected[i])
        let tol = atol + rtol * abs(expected[i])
        if !(err <= tol), (err - tol) >= worstExcess || worst < 0 {
            worst = i
            worstExcess = err - tol
        }
    }
    if worst >= 0 {
        XCTFail("\(what): index \(worst): got \(actual[worst]), expected \(expected[worst])", file: file, line: line)
    }
}

func assertClose(_ actual: [Float], _ expected: [Float], rtol: Double = 1e-4, atol: Double = 1e-5,
                 _ what: String = "", file: StaticString = #filePath, line: UInt = #line) {
    assertClose(actual, expected.map(Double.init), rtol: rtol, atol: atol, what, file: file, line: line)
}

/// max |a - e| <= tol * max(max |e|, 1e-3): the error of a Winograd sum grows with the
/// magnitude of the whole tile, not of each output element.
func assertRelMax(_ a: [Float], _ e: [Double], tol: Double, _ what: String,
                  file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, e.count, what, file: file, line: line)
    let scale = max(e.map(abs).max() ?? 0, 1e-3)
    var worst = 0.0
    var at = 0
    for i in 0..<min(a.count, e.count) {
        let d = abs(Double(a[i]) - e[i])
        if !(d <= worst) { worst = d.isNaN ? .infinity : d; at = i }
    }
    XCTAssert(worst <= tol * scale, "\(what): max error \(worst) at \(at) (\(a[at]) vs \(e[at])) > \(tol) x \(scale)",
              file: file, line: line)
}

/// Central finite differences of a double-precision scalar function at the given indices.
func numericalGradient(_ x: [Double], indices: [Int], eps: Double = 1e-5,
                       _ f: ([Double]) -> Double) -> [Double] {
    var xx = x
    return indices.map { i in
        let orig = xx[i]
        xx[i] = orig + eps
        let fp = f(xx)
        xx[i] = orig - eps
        let fm = f(xx)
        xx[i] = orig
        return (fp - fm) / (2 * eps)
    }
}

/// Indices to probe: all when small, otherwise a deterministic sample of `limit`.
func probeIndices(_ count: Int, limit: Int = 64, seed: UInt64 = 7) -> [Int] {
    if count <= limit { return Array(0..<count) }
    var r = TestRNG(seed)
    return (0..<limit).map { _ in r.int(count) }
}

/// Gradient check: compares an analytic gradient (from a float kernel) with central
/// differences of a double reference `f`, at probe indices.
func assertGradient(_ analytic: [Float], at x: [Double], rtol: Double = 2e-3, atol: Double = 1e-4,
                    _ what: String = "", limit: Int = 64, eps: Double = 1e-5,
                    file: StaticString = #filePath, line: UInt = #line, _ f: ([Double]) -> Double) {
    XCTAssertEqual(analytic.count, x.count, "\(what): gradient length", file: file, line: line)
    let idx = probeIndices(x.count, limit: limit)
    let num = numericalGradient(x, indices: idx, eps: eps, f)
    assertClose(idx.map { analytic[$0] }, num, rtol: rtol, atol: atol, "\(what) gradient", file: file, line: line)
}

/// Runs `body` once per SIMD level this CPU supports, on a context with `threads` threads.
func forEachSIMDLevel(threads: Int32 = 2, _ body: (OpaquePointer, String) throws -> Void) rethrows {
    let top = ff_cpu_simd_level()
    for level in 0...top {
        let ctx = ff_ctx_create(threads)!
        ff_ctx_set_simd(ctx, level)
        defer { ff_ctx_destroy(ctx) }
        try body(ctx, String(cString: ff_simd_name(level)))
    }
}

/// Calls `body` with mutable/immutable base addresses of arrays, to keep kernel calls short.
extension Array where Element == Float {
    var doubles: [Double] { map(Double.init) }
}

/// Runs `body` on every SIMD level with 1 and 3 threads and requires identical results
/// (floats compared bit for bit, so NaNs must match too); returns the common result.
func everyPath<T: Equatable>(_ what: String, file: StaticString = #filePath, line: UInt = #line,
                             _ body: (OpaquePointer) -> T) -> T {
    everyPathBits(what, file: file, line: line, body, bits: { $0 }, back: { $0 })
}

func everyPath(_ what: String, file: StaticString = #filePath, line: UInt = #line,
               _ body: (OpaquePointer) -> [Float]) -> [Float] {
    everyPathBits(what, file: file, line: line, body, bits: { $0.map(\.bitPattern) },
                  back: { $0.map(Float.init(bitPattern:)) })
}

func everyPath(_ what: String, file: StaticString = #filePath, line: UInt = #line,
               _ body: (OpaquePointer) -> [[Float]]) -> [[Float]] {
    everyPathBits(what, file: file, line: line, body, bits: { $0.map { $0.map(\.bitPattern) } },
                  back: { $0.map { $0.map(Float.init(bitPattern:)) } })
}

private func everyPathBits<T, B: Equatable>(_ what: String, file: StaticString, line: UInt,
                                            _ body: (OpaquePointer) -> T, bits: (T) -> B, back: (B) -> T) -> T {
    var first: B?
    for threads: Int32 in [1, 3] {
        forEachSIMDLevel(threads: threads) { ctx, level in
            let r = bits(body(ctx))
            if let f = first {
                XCTAssert(f == r, "\(what): \(level) with \(threads) threads differs", file: file, line: line)
            } else {
                first = r
            }
        }
    }
    return back(first!)
}
