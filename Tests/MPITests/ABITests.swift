import CMPIABI
import FFMPI
import XCTest

/// FFMPI declares the part of Open MPI's ABI it uses by hand (so the repro binary links no
/// MPI library); this compares every declared value with the installed mpi.h.
final class ABITests: XCTestCase {
    func testDeclaredABIMatchesTheInstalledHeader() {
        var text = [CChar](repeating: 0, count: 4096)
        let bad = cmpiabi_check(&text, 4096)
        XCTAssertEqual(bad, 0, "CSources/FFMPI/include/ffmpi_abi.h disagrees with mpi.h "
            + "(Open MPI \(cmpiabi_header_version())): \(String(cString: text))")
    }
}
