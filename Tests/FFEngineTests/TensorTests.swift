import XCTest
@testable import FFEngine

final class TensorTests: XCTestCase {
    func testViewsShareMemory() {
        let t = Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        let row = t.slice(1, 1)
        XCTAssertEqual(row.array, [4, 5, 6])
        row[0] = 40
        XCTAssertEqual(t[3], 40)
        XCTAssertEqual(t.reshaped([3, -1]).shape, [3, 2])
    }
}
