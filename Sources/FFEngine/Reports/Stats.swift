import Foundation

/// Summary statistics for multi-seed tables: mean, sample standard deviation, and the
/// paired t-test over seeds.
public enum Stats {
    public static func mean(_ x: [Double]) -> Double? { x.isEmpty ? nil : x.reduce(0, +) / Double(x.count) }

    /// Sample standard deviation (n - 1 in the denominator); nil for fewer than two values.
    public static func std(_ x: [Double]) -> Double? {
        guard x.count >= 2, let m = mean(x) else { return nil }
        return (x.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(x.count - 1)).squareRoot()
    }

    public struct PairedTest: Equatable {
        public var n: Int
        /// Mean and sample standard deviation of b - a.
        public var meanDifference: Double
        public var stdDifference: Double
        public var t: Double
        public var degreesOfFreedom: Int
        /// Two-sided p-value of the hypothesis that the mean difference is 0.
        public var p: Double
    }

    /// Paired t-test of b - a (equal-length lists, pairs in order). nil for fewer than two
    /// pairs. Identical differences give t = ±inf and p = 0 (or t = 0, p = 1 if all zero).
    public static func pairedTTest(_ a: [Double], _ b: [Double]) -> PairedTest? {
        precondition(a.count == b.count, "paired samples need equal lengths")
        guard a.count >= 2 else { return nil }
        let d = zip(a, b).map { $1 - $0 }
        let m = mean(d)!, s = std(d)!
        let n = d.count, df = n - 1
        let t: Double, p: Double
        if s == 0 {
            t = m == 0 ? 0 : (m > 0 ? .infinity : -.infinity)
            p = m == 0 ? 1 : 0
        } else {
            t = m / (s / Double(n).squareRoot())
            p = studentTwoSidedP(t, degreesOfFreedom: Double(df))
        }
        return PairedTest(n: n, meanDifference: m, stdDifference: s, t: t, degreesOfFreedom: df, p: p)
    }

    /// P(|T| >= |t|) for Student's t with `df` degrees of freedom: I_{df/(df+t^2)}(df/2, 1/2).
    public static func studentTwoSidedP(_ t: Double, degreesOfFreedom df: Double) -> Double {
        guard t.isFinite else { return 0 }
        return regularizedIncompleteBeta(x: df / (df + t * t), a: df / 2, b: 0.5)
    }

    /// I_x(a, b) by the continued fraction (modified Lentz), with the symmetry
    /// I_x(a, b) = 1 - I_{1-x}(b, a) where the fraction converges slowly.
    public static func regularizedIncompleteBeta(x: Double, a: Double, b: Double) -> Double {
        if x <= 0 { return 0 }
        if x >= 1 { return 1 }
        if x > (a + 1) / (a + b + 2) { return 1 - regularizedIncompleteBeta(x: 1 - x, a: b, b: a) }
        let logBeta: Double = lgamma(a) + lgamma(b) - lgamma(a + b)
        let logFront: Double = a * log(x) + b * log(1 - x) - logBeta
        let tiny = 1e-300
        var c = 1.0, d = 1 - (a + b) * x / (a + 1)
        if abs(d) < tiny { d = tiny }
        d = 1 / d
        var f = d
        for m in 1...300 {
            let m = Double(m)
            // Even step.
            var num = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
            d = 1 + num * d; if abs(d) < tiny { d = tiny }
            c = 1 + num / c; if abs(c) < tiny { c = tiny }
            d = 1 / d
            f *= d * c
            // Odd step.
            num = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
            d = 1 + num * d; if abs(d) < tiny { d = tiny }
            c = 1 + num / c; if abs(c) < tiny { c = tiny }
            d = 1 / d
            let delta = d * c
            f *= delta
            if abs(delta - 1) < 1e-15 { break }
        }
        return exp(logFront) * f / a
    }
}
