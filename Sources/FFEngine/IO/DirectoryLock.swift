import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An exclusive lock on an output directory (`repro run`, `repro prep`), so two processes
/// never write into one directory at once. It is a `flock` on DIR/.repro.lock: the kernel
/// drops it when the holder exits in any way (also kill -9), so a lock is never stale. The
/// file names the holder, for the message another process prints, and is removed on release.
public final class DirectoryLock {
    public static let fileName = ".repro.lock"
    public let directory: URL
    private let lockURL: URL
    private var fd: Int32 = -1

    /// Creates `directory` if needed and takes the lock, or throws `.busy` naming the holder.
    public init(_ directory: URL, purpose: String) throws {
        self.directory = directory
        try DirectoryLock.createDirectory(directory)
        let url = directory.appendingPathComponent(DirectoryLock.fileName)
        lockURL = url
        var fd: Int32 = -1
        // The holder removes the file when it lets go; a process that locked the file just
        // before that removal holds a lock on a name that no longer exists, so it retries.
        for _ in 0..<100 {
            fd = open(url.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            guard fd >= 0 else {
                throw FFError(.io, "Cannot create the lock file \(url.path): \(String(cString: strerror(errno))). Check that "
                    + "\(directory.path) is writable.", file: url)
            }
            if flock(fd, LOCK_EX | LOCK_NB) != 0 {
                let busy = errno == EWOULDBLOCK
                let holder = DirectoryLock.holder(fd)
                close(fd)
                if busy {
                    throw FFError(.busy, "\(directory.path) is in use by another repro process (\(holder)). Wait for it to "
                        + "finish, or choose another output directory.", file: directory)
                }
                throw FFError(.io, "Cannot lock \(url.path): \(String(cString: strerror(errno))).", file: url)
            }
            var held = stat(), named = stat()
            if fstat(fd, &held) == 0, stat(url.path, &named) == 0, held.st_ino == named.st_ino, held.st_dev == named.st_dev {
                break
            }
            close(fd)
            fd = -1
        }
        guard fd >= 0 else {
            throw FFError(.busy, "\(directory.path) is being locked and released by other processes in quick "
                + "succession; try again.", file: directory)
        }
        self.fd = fd
        let text = "pid \(getpid()): \(purpose), since \(ISO8601DateFormatter().string(from: Date()))\n"
        _ = ftruncate(fd, 0)
        _ = text.withCString { pwrite(fd, $0, strlen($0), 0) }
    }

    deinit { release() }

    /// Drops the lock and removes the lock file, so finished folders carry no `.repro.lock`
    /// (also done when the object goes away; a killed process leaves the file, which holds
    /// no lock: the kernel dropped it).
    public func release() {
        if fd >= 0 {
            unlink(lockURL.path)
            close(fd)
            fd = -1
        }
    }

    private static func holder(_ fd: Int32) -> String {
        var buf = [UInt8](repeating: 0, count: 512)
        let n = pread(fd, &buf, buf.count, 0)
        let text = n > 0 ? String(decoding: buf.prefix(n), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : ""
        return text.isEmpty ? "holder unknown" : text
    }

    /// mkdir -p with an error that names the directory and the reason.
    public static func createDirectory(_ directory: URL) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDir) {
            if !isDir.boolValue {
                throw FFError(.invalidArgument, "\(directory.path) exists and is a file, not a directory; choose another "
                    + "output directory.", file: directory)
            }
            return
        }
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            let reason = (error as NSError).userInfo[NSUnderlyingErrorKey].map { "\($0)" } ?? error.localizedDescription
            throw FFError(.io, "Cannot create the directory \(directory.path): \(DirectoryLock.plain(reason)). Check that "
                + "its parent exists and is writable, or choose another output directory.", file: directory)
        }
    }

    /// The first sentence of a Foundation error, without its domain/code decoration.
    static func plain(_ text: String) -> String {
        if let r = text.range(of: "\"") , let e = text[r.upperBound...].firstIndex(of: "\"") {
            return String(text[r.upperBound..<e])
        }
        return text
    }
}

extension AtomicFile {
    /// Removes `<name>.tmp.<pid>` files in `directory` left by processes that no longer run
    /// (and by this process's pid, which cannot have written them yet: the caller holds the
    /// directory's lock). Returns the names removed.
    @discardableResult
    public static func removeStaleTemporaries(in directory: URL) -> [String] {
        var removed: [String] = []
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? [] {
            guard let r = name.range(of: ".tmp.", options: .backwards) else { continue }
            let tail = name[r.upperBound...]
            guard !tail.isEmpty, tail.allSatisfy(\.isASCII), tail.allSatisfy(\.isNumber), let pid = Int32(tail) else { continue }
            let alive = pid != getpid() && (kill(pid, 0) == 0 || errno == EPERM)
            if !alive, (try? FileManager.default.removeItem(at: directory.appendingPathComponent(name))) != nil {
                removed.append(name)
            }
        }
        return removed.sorted()
    }
}
