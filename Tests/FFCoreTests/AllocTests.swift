import FFCore
import XCTest

/// Tensor memory: large buffers are reused by exact size, come back zeroed when asked, and
/// the cache never holds more than the slack above the high-water mark of live bytes.
final class AllocTests: XCTestCase {
    let mib = 1 << 20

    func testLargeBuffersAreReusedZeroedAndBounded() throws {
        ff_buffer_release_cache()
        let a = try XCTUnwrap(ff_buffer_alloc(3 * mib, 1))
        let bytes = a.bindMemory(to: UInt8.self, capacity: 3 * mib)
        XCTAssertTrue((0..<(3 * mib)).allSatisfy { bytes[$0] == 0 })
        memset(a, 0xAB, 3 * mib)
        ff_buffer_free(a, 3 * mib)
        XCTAssertGreaterThanOrEqual(ff_buffer_cached_bytes(), 3 * mib)
        let b = try XCTUnwrap(ff_buffer_alloc(3 * mib, 1))
        XCTAssertEqual(a, b, "the same size comes back from the cache")
        let bb = b.bindMemory(to: UInt8.self, capacity: 3 * mib)
        XCTAssertTrue((0..<(3 * mib)).allSatisfy { bb[$0] == 0 }, "zeroed on reuse")
        ff_buffer_free(b, 3 * mib)
        // Many distinct sizes freed while nothing is live: the cache stays within the slack.
        let sizes = (1...40).map { (2 + $0) * mib }
        var ptrs = sizes.map { ff_buffer_alloc($0, 0)! }
        for (p, s) in zip(ptrs, sizes) { ff_buffer_free(p, s) }
        ptrs = []
        let highWater = sizes.reduce(0, +)
        XCTAssertLessThanOrEqual(ff_buffer_cached_bytes(), highWater + 64 * mib)
        ff_buffer_release_cache()
        XCTAssertEqual(ff_buffer_cached_bytes(), 0)
        // After the release the high-water mark restarts, so one small live set keeps a small cache.
        for s in sizes {
            let p = ff_buffer_alloc(s, 0)!
            ff_buffer_free(p, s)
        }
        XCTAssertLessThanOrEqual(ff_buffer_cached_bytes(), sizes.max()! + 64 * mib)
        ff_buffer_release_cache()
    }

    func testSmallBuffersAreAlignedAndZeroed() throws {
        for n in [1, 63, 64, 4097, 100_000] {
            let p = try XCTUnwrap(ff_buffer_alloc(n, 1))
            XCTAssertEqual(Int(bitPattern: p) % 64, 0)
            let b = p.bindMemory(to: UInt8.self, capacity: n)
            XCTAssertTrue((0..<n).allSatisfy { b[$0] == 0 })
            ff_buffer_free(p, n)
        }
    }
}
