import Foundation

/// `repro bench --compare-torch`: ffrepro's model benchmark and tools/bench/torch_step.py
/// (the same step in PyTorch) run alternately, several rounds, and are summarised as
/// min / median / max per system and as per-round ratios (ours / theirs, same round).
public enum TorchComparison {
    /// One line of torch_step.py's output.
    public struct TorchResult: Codable {
        public var name: String
        public var mode: String
        public var threads: Int
        public var batch: Int
        public var torch: String
        public var trainImagesPerSecond: Double?
        public var inferImagesPerSecond: Double?
        public var trainPeakRss: Int?
        public var inferPeakRss: Int?
    }

    /// One measurement of one system in one round.
    public struct Sample {
        public var target: String
        public var system: String      // "ffrepro fp32", "torch compile", ...
        public var round: Int
        public var train: Double?
        public var infer: Double?
        public var trainRSS: Int?

        public init(target: String, system: String, round: Int, train: Double?, infer: Double?, trainRSS: Int?) {
            (self.target, self.system, self.round) = (target, system, round)
            (self.train, self.infer, self.trainRSS) = (train, infer, trainRSS)
        }

        public init(target: String, system: String, round: Int, _ r: ModelBenchResult) {
            self.init(target: target, system: system, round: round, train: r.trainImagesPerSecond,
                      infer: r.inferImagesPerSecond, trainRSS: r.trainPeakRSS)
        }

        public init(target: String, system: String, round: Int, _ r: TorchResult) {
            self.init(target: target, system: system, round: round, train: r.trainImagesPerSecond,
                      infer: r.inferImagesPerSecond, trainRSS: r.trainPeakRss)
        }
    }

    public static func decodeTorch(_ line: String) throws -> TorchResult {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        return try d.decode(TorchResult.self, from: Data(line.utf8))
    }

    static func stats(_ xs: [Double]) -> String {
        guard !xs.isEmpty else { return "-" }
        let s = xs.sorted()
        let med = s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
        let p = s.last! >= 100 ? "%.0f" : "%.1f"
        return [s.first!, med, s.last!].map { String(format: p, $0) }.joined(separator: " / ")
    }

    static func ratioStats(_ xs: [Double]) -> String {
        guard !xs.isEmpty else { return "-" }
        let s = xs.sorted()
        let med = s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
        return [s.first!, med, s.last!].map { String(format: "%.2f", $0) }.joined(separator: " / ")
    }

    /// Absolute numbers (min / median / max over the rounds) and, for every ffrepro system
    /// against every torch system, the ratio of the two measured in the same round.
    public static func format(_ samples: [Sample]) -> String {
        var targets: [String] = []
        var systems: [String] = []
        for s in samples {
            if !targets.contains(s.target) { targets.append(s.target) }
            if !systems.contains(s.system) { systems.append(s.system) }
        }
        let rounds = Set(samples.map(\.round)).count
        var abs: [[String]] = [["target", "system", "train im/s", "infer im/s", "train peak RSS MiB"]]
        var ratios: [[String]] = [["target", "ffrepro / torch", "train", "infer"]]
        for t in targets {
            for sys in systems {
                let xs = samples.filter { $0.target == t && $0.system == sys }
                guard !xs.isEmpty else { continue }
                abs.append([t, sys, stats(xs.compactMap(\.train)), stats(xs.compactMap(\.infer)),
                            stats(xs.compactMap(\.trainRSS).map { Double($0) / 1_048_576 })])
            }
            for ours in systems where ours.hasPrefix("ffrepro") {
                for theirs in systems where theirs.hasPrefix("torch") {
                    func ratio(_ key: KeyPath<Sample, Double?>) -> [Double] {
                        samples.filter { $0.target == t && $0.system == ours }.compactMap { o -> Double? in
                            guard let a = o[keyPath: key],
                                  let b = samples.first(where: { $0.target == t && $0.system == theirs && $0.round == o.round })?[keyPath: key],
                                  b > 0 else { return nil }
                            return a / b
                        }
                    }
                    let tr = ratio(\.train), inf = ratio(\.infer)
                    if tr.isEmpty && inf.isEmpty { continue }
                    ratios.append([t, "\(ours) / \(theirs)", ratioStats(tr), ratioStats(inf)])
                }
            }
        }
        return TextTable.render(abs, rightAligned: [2, 3, 4]) + "\n\n"
            + TextTable.render(ratios, rightAligned: [2, 3]) + "\n"
            + "min / median / max over \(rounds) alternating round(s); a ratio compares the two systems measured "
            + "in the same round (> 1: ffrepro faster)."
    }
}
