import FFEngine
import Foundation

/// A seeded mutation fuzzer for builds without libFuzzer (and CI's smoke pass): each input
/// is a corpus seed changed by 1-8 random edits (bit flips, interesting values, inserted,
/// deleted, duplicated or spliced ranges, truncation). Deterministic for a given seed.
public struct Mutator {
    var rng: SeededRandom
    let maxLength: Int

    public init(seed: UInt64, maxLength: Int = 1 << 16) {
        rng = SeededRandom(seed: seed, stream: "fuzz")
        self.maxLength = maxLength
    }

    static let interesting8: [UInt8] = [0, 1, 0x7F, 0x80, 0xFF, 0x10, 0x40]
    static let interesting32: [UInt32] = [0, 1, 0xFF, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0x10000, 65500]

    mutating func below(_ n: Int) -> Int { n <= 1 ? 0 : rng.below(n) }

    public mutating func mutate(_ input: [UInt8], splice other: [UInt8]) -> [UInt8] {
        var b = input
        for _ in 0..<(1 + below(8)) {
            if b.isEmpty { b = [UInt8(truncatingIfNeeded: rng.next())]; continue }
            let i = below(b.count)
            switch below(10) {
            case 0: b[i] ^= UInt8(1 << below(8))
            case 1: b[i] = UInt8(truncatingIfNeeded: rng.next())
            case 2: b[i] = Mutator.interesting8[below(Mutator.interesting8.count)]
            case 3:  // a big-endian 32-bit value (the headers here are big-endian)
                let v = Mutator.interesting32[below(Mutator.interesting32.count)]
                for k in 0..<4 where i + k < b.count { b[i + k] = UInt8(truncatingIfNeeded: v >> (24 - 8 * k)) }
            case 4:
                let n = 1 + below(16)
                b.insert(contentsOf: (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: i)
            case 5: b.removeSubrange(i..<min(b.count, i + 1 + below(32)))
            case 6:
                let j = below(b.count), n = min(1 + below(64), b.count - j)
                b.insert(contentsOf: b[j..<j + n], at: i)
            case 7: b.removeLast(below(b.count))
            case 8 where !other.isEmpty:
                let j = below(other.count)
                b = Array(b.prefix(i)) + other[j...]
            default:
                let v = Mutator.interesting32[below(Mutator.interesting32.count)]
                for k in 0..<4 where i + k < b.count { b[i + k] = UInt8(truncatingIfNeeded: v >> (8 * k)) }
            }
        }
        if b.count > maxLength { b.removeLast(b.count - maxLength) }
        return b
    }
}

public enum FuzzRunner {
    /// Seeds of a target: the files of `corpus/<target>/`, in name order.
    public static func seeds(_ corpus: URL, target: String) -> [[UInt8]] {
        let dir = corpus.appendingPathComponent(target)
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
        return names.compactMap { FileManager.default.contents(atPath: dir.appendingPathComponent($0).path).map { Array($0) } }
    }

    /// Runs the seeds, then mutations until `iterations` inputs or `seconds` elapsed.
    /// Returns the number of executions.
    @discardableResult
    public static func run(_ target: String, seeds: [[UInt8]], iterations: Int, seconds: Double, seed: UInt64) -> Int {
        let start = Date()
        var m = Mutator(seed: seed ^ target.utf8.reduce(UInt64(0xcbf2_9ce4_8422_2325)) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 })
        for s in seeds { FuzzTargets.run(target, s) }
        var done = seeds.count
        let pool = seeds.isEmpty ? [[UInt8]()] : seeds
        while done < iterations && Date().timeIntervalSince(start) < seconds {
            let a = pool[m.below(pool.count)], b = pool[m.below(pool.count)]
            FuzzTargets.run(target, m.mutate(a, splice: b))
            done += 1
        }
        return done
    }
}
