import FFFuzz
import Foundation

// Built with libFuzzer (`make fuzz`: -sanitize=fuzzer,address -DFFREPRO_LIBFUZZER), this
// file is only the entry point; the target comes from FFREPRO_FUZZ_TARGET. Otherwise it is
// a seeded mutation loop:
//   ffrepro-fuzz run TARGET CORPUS_DIR [--iterations N] [--seconds S] [--seed K]
//   ffrepro-fuzz make-corpus DIR
#if FFREPRO_LIBFUZZER
let fuzzTarget: String = ProcessInfo.processInfo.environment["FFREPRO_FUZZ_TARGET"] ?? ""

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> Int32 {
    guard (FuzzTargets.all + FuzzTargets.libraryTargets).contains(fuzzTarget) else {
        FileHandle.standardError.write(Data("set FFREPRO_FUZZ_TARGET to one of \(FuzzTargets.all)\n".utf8))
        exit(2)
    }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    FuzzTargets.run(fuzzTarget, Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
#else
@main
struct FuzzMain {
    static func main() throws {
        var args = Array(CommandLine.arguments.dropFirst())
        func option(_ name: String, _ fallback: String) -> String {
            guard let i = args.firstIndex(of: name), i + 1 < args.count else { return fallback }
            let v = args[i + 1]
            args.removeSubrange(i...i + 1)
            return v
        }
        let iterations = Int(option("--iterations", "100000")) ?? 100000
        let seconds = Double(option("--seconds", "60")) ?? 60
        let seed = UInt64(option("--seed", "1")) ?? 1
        switch (args.first, args.count) {
        case ("make-corpus", 2):
            try Corpus.write(to: URL(fileURLWithPath: args[1]))
        case ("run", 3) where (FuzzTargets.all + FuzzTargets.libraryTargets).contains(args[1]):
            let seeds = FuzzRunner.seeds(URL(fileURLWithPath: args[2]), target: args[1])
            let start = Date()
            let n = FuzzRunner.run(args[1], seeds: seeds, iterations: iterations, seconds: seconds, seed: seed)
            FuzzTargets.cleanUp()
            print(String(format: "%@: %d executions in %.1f s, no crash", args[1], n, Date().timeIntervalSince(start)))
        default:
            FileHandle.standardError.write(Data(("usage: ffrepro-fuzz run TARGET CORPUS_DIR [--iterations N] [--seconds S] "
                + "[--seed K] | make-corpus DIR\ntargets: \((FuzzTargets.all + FuzzTargets.libraryTargets).joined(separator: ", "))\n").utf8))
            exit(64)
        }
    }
}
#endif
