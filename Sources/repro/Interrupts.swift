import Dispatch
import FFEngine
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Ctrl-C (SIGINT) and SIGTERM for long commands. The signal is taken off the default
/// action and handled on a dispatch queue (not in signal context), so the handler may
/// print: what was interrupted and the command that continues it. Checkpoints are written
/// atomically, so stopping at any instant leaves the last finished epoch intact.
enum Interrupts {
    private static var sources: [DispatchSourceSignal] = []
    private static let queue = DispatchQueue(label: "ffrepro.interrupts")

    /// Calls `handler` with the signal number on SIGINT or SIGTERM (from then on).
    static func install(_ handler: @escaping (Int32) -> Void) {
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            s.setEventHandler { handler(sig) }
            s.resume()
            sources.append(s)
        }
    }

    /// Writes `message` to stderr and ends the process at once with 128 + signal, as a
    /// shell reports a process killed by it (130 for Ctrl-C).
    static func exit(_ sig: Int32, message: String) -> Never {
        FileHandle.standardError.write(Data(("\n" + message + "\n").utf8))
        _exit(128 + sig)
    }

    /// Words for an exit status of a `repro` child (the sysexits values of Repro.guarded).
    static func describe(status: Int32) -> String {
        switch status {
        case 2: return "the training diverged (non-finite loss)"
        case 64: return "bad arguments"
        case 65: return "bad or mismatched data"
        case 66: return "a missing input file"
        case 70: return "an internal error"
        case 74: return "an I/O error (disk full, or a folder not writable)"
        case 75: return "its folder is in use by another repro process"
        case 128...: return "it was stopped by signal \(status - 128)"
        default: return "exit status \(status)"
        }
    }
}
