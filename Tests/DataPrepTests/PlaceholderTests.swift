import XCTest
@testable import DataPrep
final class DataPrepPlaceholderTests: XCTestCase { func testLinks() { XCTAssertTrue(true) } }
