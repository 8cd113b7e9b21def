import FFCore
import XCTest

/// xoshiro256** / splitmix64: published reference values, golden outputs of our streams,
/// determinism, independence of streams, and statistical sanity of every sampler.
final class RNGTests: XCTestCase {
    private func seeded(_ seed: UInt64) -> ff_rng {
        var r = ff_rng()
        ff_rng_seed(&r, seed)
        return r
    }

    private func stream(_ seed: UInt64, _ s: UInt64) -> ff_rng {
        var r = ff_rng()
        ff_rng_seed_stream(&r, seed, s)
        return r
    }

    private func words(_ r: ff_rng) -> [UInt64] { [r.s.0, r.s.1, r.s.2, r.s.3] }

    private func nexts(_ r: inout ff_rng, _ count: Int) -> [UInt64] { (0..<count).map { _ in ff_rng_next(&r) } }

    // MARK: reference values

    /// splitmix64 from 0 and xoshiro256** from the state {1, 2, 3, 4}, as published with
    /// the reference implementations.
    func testReferenceAlgorithms() {
        XCTAssertEqual(words(seeded(0)), [0xE220_A839_7B1D_CDAF, 0x6E78_9E6A_A1B9_65F4,
                                          0x06C4_5D18_8009_454F, 0xF88B_B8A8_724C_81EC])
        var r = ff_rng(s: (1, 2, 3, 4))
        XCTAssertEqual(nexts(&r, 4), [11520, 0, 1_509_978_240, 1_215_971_899_390_074_240])
    }

    /// Golden outputs: any change to seeding, the generator or a sampler changes them, and
    /// with them every seeded run. (Values cross-checked with an independent script.)
    func testGoldenOutputs() {
        var r = seeded(42)
        XCTAssertEqual(nexts(&r, 4), [0x1578_0B2E_0C2E_C716, 0x6104_D986_6D11_3A7E,
                                      0xAE17_5332_39E4_99A1, 0xECB8_AD47_03B3_60A1])
        r = seeded(42)
        XCTAssertEqual((0..<4).map { _ in ff_rng_uniform(&r) },
                       [0.08386296033859253, 0.37898021936416626, 0.6800433993339539, 0.9246929287910461])
        r = seeded(42)
        XCTAssertEqual((0..<2).map { _ in ff_rng_uniform_double(&r) }, [0.08386297105988216, 0.3789802506626686])
        r = seeded(7)
        XCTAssertEqual((0..<8).map { _ in ff_rng_below(&r, 10) }, [7, 2, 8, 9, 9, 8, 0, 1])
        XCTAssertEqual((0..<3).map { _ in ff_rng_below(&r, 1_000_003) }, [403_707, 151_816, 541_369])
        r = stream(42, 3)
        XCTAssertEqual(nexts(&r, 2), [0x2F33_0B27_FDE1_6F64, 0x3B67_3CA1_CA3A_14C1])
        r = seeded(42)
        var normals = [Float](repeating: 0, count: 5)
        ff_rng_fill_normal(&r, 5, &normals, 0.5, 2)
        XCTAssertEqual(normals, [-0.10652612894773483, 1.0769234895706177, 3.1876235008239746,
                                 -0.8759503364562988, 1.2669235467910767])
        r = seeded(9)
        var perm = [Int32](repeating: 0, count: 10)
        ff_rng_permutation(&r, 10, &perm)
        XCTAssertEqual(perm, [4, 9, 7, 8, 3, 6, 5, 1, 2, 0])
    }

    // MARK: determinism and streams

    func testSameSeedSameStream() {
        var a = seeded(123), b = seeded(123)
        XCTAssertEqual(nexts(&a, 1000), nexts(&b, 1000))
        var c = stream(123, 5), d = stream(123, 5)
        XCTAssertEqual(nexts(&c, 1000), nexts(&d, 1000))
        // The state is plain data: a copy continues identically (checkpoint/resume).
        var e = seeded(77)
        _ = nexts(&e, 37)
        var f = ff_rng(s: e.s)
        XCTAssertEqual(nexts(&e, 100), nexts(&f, 100))
    }

    func testStreamsDiffer() {
        var firsts = Set<UInt64>()
        var outputs: [[UInt64]] = []
        for (seed, s) in [(1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (0, 1), (1, 1 << 40)] as [(UInt64, UInt64)] {
            var r = stream(seed, s)
            let out = nexts(&r, 64)
            firsts.insert(out[0])
            outputs.append(out)
        }
        for seed: UInt64 in [0, 1, 2] {
            var r = seeded(seed)
            let out = nexts(&r, 64)
            firsts.insert(out[0])
            outputs.append(out)
        }
        XCTAssertEqual(firsts.count, outputs.count, "every (seed, stream) must start differently")
        // No stream is a shifted copy of another over a short window.
        for i in outputs.indices {
            for j in outputs.indices where i != j {
                XCTAssertFalse(Set(outputs[i]).intersection(outputs[j]).count > 0, "streams \(i) and \(j) overlap")
            }
        }
        // Swapping seed and stream gives a different stream.
        var a = stream(3, 4), b = stream(4, 3)
        XCTAssertNotEqual(ff_rng_next(&a), ff_rng_next(&b))
    }

    // MARK: samplers

    func testUniformStatistics() {
        var r = seeded(2024)
        let n = 100_000
        var xs = [Double]()
        xs.reserveCapacity(n)
        for _ in 0..<n {
            let u = ff_rng_uniform(&r)
            XCTAssert(u >= 0 && u < 1)
            // 24 random bits: every value is a multiple of 2^-24.
            XCTAssertEqual(u * 16_777_216, (u * 16_777_216).rounded())
            xs.append(Double(u))
        }
        let mean = xs.reduce(0, +) / Double(n)
        let variance = xs.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(n)
        // Standard error of the mean is 0.0009; of the variance about 0.0003.
        XCTAssertEqual(mean, 0.5, accuracy: 0.005)
        XCTAssertEqual(variance, 1.0 / 12, accuracy: 0.0015)

        var dsum = 0.0
        for _ in 0..<n {
            let u = ff_rng_uniform_double(&r)
            XCTAssert(u >= 0 && u < 1)
            dsum += u
        }
        XCTAssertEqual(dsum / Double(n), 0.5, accuracy: 0.005)

        var buf = [Float](repeating: 0, count: n)
        ff_rng_fill_uniform(&r, n, &buf, -2, 3)
        XCTAssert(buf.allSatisfy { $0 >= -2 && $0 < 3 })
        XCTAssertEqual(buf.reduce(0.0) { $0 + Double($1) } / Double(n), 0.5, accuracy: 0.025)
        // A range where lo + (hi - lo) * u rounds up to hi for u close to 1: still below hi.
        ff_rng_fill_uniform(&r, n, &buf, 1, 1.0000002)
        XCTAssert(buf.allSatisfy { $0 >= 1 && $0 < 1.0000002 })
    }

    func testNormalStatistics() {
        var r = seeded(99)
        for n in [100_000, 100_001] { // even and odd lengths
            var x = [Float](repeating: .nan, count: n)
            ff_rng_fill_normal(&r, n, &x, 1.5, 0.5)
            XCTAssert(x.allSatisfy { $0.isFinite })
            let z = x.map { (Double($0) - 1.5) / 0.5 }
            let mean = z.reduce(0, +) / Double(n)
            let variance = z.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(n)
            let kurt = z.reduce(0) { $0 + pow($1 - mean, 4) } / Double(n) / (variance * variance)
            // Standard errors: mean 0.0032, std 0.0022, kurtosis 0.015.
            XCTAssertEqual(mean, 0, accuracy: 0.02)
            XCTAssertEqual(sqrt(variance), 1, accuracy: 0.012)
            XCTAssertEqual(kurt, 3, accuracy: 0.1)
            // Tails: P(|z| > 2) = 0.0455.
            let tail = Double(z.filter { abs($0) > 2 }.count) / Double(n)
            XCTAssertEqual(tail, 0.0455, accuracy: 0.004)
        }
    }

    func testBelowIsUnbiased() {
        var r = seeded(5)
        // Chi-square over 10 bins: 9 degrees of freedom, P(chi2 > 40) < 1e-5.
        let n = 100_000, k: UInt32 = 10
        var counts = [Int](repeating: 0, count: Int(k))
        for _ in 0..<n {
            let v = ff_rng_below(&r, k)
            XCTAssert(v < k)
            counts[Int(v)] += 1
        }
        let expected = Double(n) / Double(k)
        let chi2 = counts.reduce(0.0) { $0 + pow(Double($1) - expected, 2) / expected }
        XCTAssertLessThan(chi2, 40, "counts \(counts)")
        // bound = 3 * 2^30: plain `next % bound` would give [0, 2^30) half the mass instead of
        // a third. Standard error of the fraction is 0.0015.
        let big: UInt32 = 3 << 30
        var low = 0
        for _ in 0..<n where ff_rng_below(&r, big) < 1 << 30 { low += 1 }
        XCTAssertEqual(Double(low) / Double(n), 1.0 / 3, accuracy: 0.01)
        for _ in 0..<100 { XCTAssertEqual(ff_rng_below(&r, 1), 0) }
        XCTAssert((0..<1000).allSatisfy { _ in ff_rng_below(&r, UInt32.max) < UInt32.max })
    }

    func testPermutation() {
        for len in [0, 1, 2, 17, 10_000] {
            var r = seeded(UInt64(len) + 1)
            var p = [Int32](repeating: -1, count: len)
            ff_rng_permutation(&r, len, &p)
            XCTAssertEqual(p.sorted(), (0..<Int32(len)).map { $0 }, "permutation of \(len)")
            var r2 = seeded(UInt64(len) + 1)
            var q = [Int32](repeating: -1, count: len)
            ff_rng_permutation(&r2, len, &q)
            XCTAssertEqual(p, q, "deterministic for \(len)")
        }
        var a = seeded(1), b = seeded(2)
        var pa = [Int32](repeating: 0, count: 1000), pb = pa
        ff_rng_permutation(&a, 1000, &pa)
        ff_rng_permutation(&b, 1000, &pb)
        XCTAssertNotEqual(pa, pb)
        // All 6 orders of 3 items equally likely: chi-square with 5 degrees of freedom,
        // P(chi2 > 30) < 2e-5.
        var r = seeded(31)
        var counts = [String: Int]()
        let n = 60_000
        var p3 = [Int32](repeating: 0, count: 3)
        for _ in 0..<n {
            ff_rng_permutation(&r, 3, &p3)
            counts["\(p3)", default: 0] += 1
        }
        XCTAssertEqual(counts.count, 6)
        let chi2 = counts.values.reduce(0.0) { $0 + pow(Double($1) - 10_000, 2) / 10_000 }
        XCTAssertLessThan(chi2, 30, "counts \(counts)")
    }
}
