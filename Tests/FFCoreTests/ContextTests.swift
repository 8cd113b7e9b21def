import XCTest
import FFCore

final class ContextTests: XCTestCase {
    func testParallelForCoversRangeOnce() {
        let ctx = ff_ctx_create(3)!
        defer { ff_ctx_destroy(ctx) }
        var hits = [Int32](repeating: 0, count: 1000)
        hits.withUnsafeMutableBufferPointer { buf in
            ff_parallel_for(ctx, 1000, 1, { arg, b, e, _ in
                let p = arg!.assumingMemoryBound(to: Int32.self)
                for i in Int(b)..<Int(e) { p[i] += 1 }
            }, buf.baseAddress)
        }
        XCTAssertEqual(hits, [Int32](repeating: 1, count: 1000))
    }

    /// The dynamic schedule also runs every item exactly once, for grains that do and do not
    /// divide the range, and passes thread ids below the thread count.
    func testDynamicParallelForCoversRangeOnce() {
        let ctx = ff_ctx_create(3)!
        defer { ff_ctx_destroy(ctx) }
        for (n, grain) in [(1000, 1), (1000, 7), (5, 16), (1, 1)] {
            var hits = [Int32](repeating: 0, count: n + 1)
            hits.withUnsafeMutableBufferPointer { buf in
                ff_parallel_for_dynamic(ctx, n, grain, { arg, b, e, tid in
                    let p = arg!.assumingMemoryBound(to: Int32.self)
                    for i in Int(b)..<Int(e) { p[i] += 1 }
                    if tid < 0 || tid >= 3 { p[Int(e)] += 100 }
                }, buf.baseAddress)
            }
            XCTAssertEqual(Array(hits[0..<n]), [Int32](repeating: 1, count: n), "n \(n) grain \(grain)")
            XCTAssertEqual(hits[n], 0, "thread ids within the pool")
        }
    }
}
