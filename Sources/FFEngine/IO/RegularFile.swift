import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Input files must be regular files (symbolic links followed): reading a FIFO blocks until
/// some writer appears, a device may never end, and a directory gives a Foundation error
/// that tells the user nothing.
public enum RegularFile {
    /// Throws unless `url` is a regular file. `what` names the input ("--init-from",
    /// "image"); `hint` says what to give instead.
    public static func check(_ url: URL, what: String, hint: String) throws {
        var st = stat()
        guard stat(url.path, &st) == 0 else {
            let why = errno == ENOENT ? "no such file" : String(cString: strerror(errno))
            throw FFError(.missing, "\(what) \(url.path): \(why). \(hint)", file: url)
        }
        switch st.st_mode & S_IFMT {
        case S_IFREG: return
        case S_IFDIR:
            throw FFError(.invalidArgument, "\(what) \(url.path) is a directory, not a file. \(hint)", file: url)
        default:
            throw FFError(.invalidArgument, "\(what) \(url.path) is not a regular file (a FIFO, socket or device), so "
                + "it is not read. \(hint)", file: url)
        }
    }
}
