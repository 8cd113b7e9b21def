import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Temporary folders for tests: all under one folder per test process,
/// `<tmp>/ffrepro-tests-<pid>`, removed when the test bundle finishes. Folders of test
/// processes that died without cleaning up are removed when the next one starts.
public enum Scratch {
    final class Cleaner: NSObject, XCTestObservation {
        func testBundleDidFinish(_ testBundle: Bundle) { Scratch.removeRoot() }
    }

    static let prefix = "ffrepro-tests-"

    public static let root: URL = {
        let tmp = FileManager.default.temporaryDirectory
        removeStale(in: tmp)
        let url = tmp.appendingPathComponent("\(prefix)\(getpid())", isDirectory: true)
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        XCTestObservationCenter.shared.addTestObserver(Cleaner())
        return url
    }()

    /// A new empty folder `<root>/<name>-<uuid>`.
    public static func directory(_ name: String = "t") -> URL {
        let url = root.appendingPathComponent("\(name)-\(UUID().uuidString)", isDirectory: true)
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func removeRoot() { try? FileManager.default.removeItem(at: root) }

    /// Removes `ffrepro-tests-<pid>` folders whose process no longer exists.
    static func removeStale(in tmp: URL) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: tmp.path)) ?? []
        for name in names where name.hasPrefix(prefix) {
            guard let pid = Int32(name.dropFirst(prefix.count)), pid != getpid() else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { try? FileManager.default.removeItem(at: tmp.appendingPathComponent(name)) }
        }
    }
}
