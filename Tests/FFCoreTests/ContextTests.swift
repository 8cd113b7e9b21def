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
}
