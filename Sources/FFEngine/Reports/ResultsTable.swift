import Foundation

/// `repro table`: Markdown tables of groups of runs (mean ± sample std over seeds) and
/// paired t-tests over seeds of each later group against the first.
public enum ResultsTable {
    /// A metric read from one run's record (percent), nil when not measured.
    struct Metric {
        var name: String
        var value: (ResultsRecord) -> Double?
    }

    static func fmt(_ x: [Double]) -> String {
        guard let m = Stats.mean(x) else { return "-" }
        if let s = Stats.std(x) { return String(format: "%.2f ± %.2f", m, s) }
        return String(format: "%.2f", m)
    }

    static func row(_ cells: [String]) -> String { "| " + cells.joined(separator: " | ") + " |" }

    static func header(_ cells: [String], rightFrom: Int = 1) -> [String] {
        [row(cells), row(cells.indices.map { $0 >= rightFrom ? "---:" : "---" })]
    }

    static let predictorMetrics: [Metric] = [
        Metric(name: "best val %") { $0.bestValPct },
        Metric(name: "top-1 %") { $0.top1Pct },
        Metric(name: "top-5 %") { $0.top5Pct },
        Metric(name: "head top-1 %") { $0.headTop1Pct },
        Metric(name: "Best Pred top-1 %") { $0.bestPredTop1Pct },
        Metric(name: "balanced %") { $0.balancedTop1Pct },
        Metric(name: "majority %") { $0.majorityPct },
    ]

    public static func markdown(_ groups: [RunGroup]) -> String {
        var out: [String] = []
        let split = Set(groups.flatMap { $0.runs.compactMap(\.record.split) }).sorted().joined(separator: "/")
        out.append("Results on \(split.isEmpty ? "no test split" : split) (best val % = the selection metric on "
            + "validation at the best epoch); mean ± sample std over runs:")
        out.append("")
        out += header(["runs", "n", "seeds", "predictor", "epochs"] + predictorMetrics.map(\.name), rightFrom: 5)
        for g in groups {
            let recs = g.runs.map(\.record)
            let epochs = Set(recs.compactMap(\.epochsTrained)).sorted().map(String.init).joined(separator: ",")
            let predictors = Set(recs.map(\.predictor)).sorted().joined(separator: ", ")
            let seeds = g.seeds.map(String.init).joined(separator: ", ")
            // † marks a top-1 that is not above the majority-class baseline in some run.
            let below = recs.contains { $0.beatsMajority == false }
            out.append(row([g.name, String(g.runs.count), seeds, predictors, epochs]
                           + predictorMetrics.map { m in fmt(recs.compactMap(m.value)) + (below && m.name == "top-1 %" ? " †" : "") }))
        }
        if groups.contains(where: { $0.runs.contains { $0.record.beatsMajority == false } }) {
            out.append("")
            out.append("† not above the majority-class baseline (always predicting the most frequent class) in at least "
                + "one run: the predictor has learned nothing a constant does not give.")
        }
        // Per seed, in the order of the seeds column: "5, 5, 4" is not the set {4, 5}.
        if groups.contains(where: { $0.runs.contains { $0.record.bestPredReadout != nil } }) {
            out.append("")
            out.append("Best Pred readout chosen on validation, per seed: " + groups.map { g in
                let b = g.runs.map { r in r.record.bestPredReadout.map { "\($0)" } ?? "-" }
                return "\(g.name): " + zip(g.seeds, b).map { "seed \($0) → \($1)" }.joined(separator: ", ")
            }.joined(separator: "; ") + ".")
        }
        out += readoutTables(groups)
        if groups.count >= 2 { out += comparisons(groups) }
        out += buildNote(groups)
        return out.joined(separator: "\n") + "\n"
    }

    /// Which builds and arithmetic made the numbers; a warning when they differ (then runs
    /// agree within seed noise at best, not bit for bit).
    static func buildNote(_ groups: [RunGroup]) -> [String] {
        let records = groups.flatMap { $0.runs.map(\.record) }
        let builds = Set(records.map { r in r.build.map { "\($0.version) \($0.commit.map { String($0.prefix(10)) } ?? "?")"
            + ($0.dirty == true ? "+dirty" : "") } ?? "unrecorded" })
        let prints = Set(records.map { $0.build.map { "\($0.fingerprint.prefix(10))-\($0.simd)-\($0.threads)" } ?? "unrecorded" })
        if builds.count <= 1 && prints.count <= 1 {
            return ["", "Build: \(builds.first ?? "-"), arithmetic fingerprint \(prints.first ?? "-") (all runs)."]
        }
        return ["", "Warning: these runs come from \(builds.count) build(s) (\(builds.sorted().joined(separator: "; "))) and "
            + "\(prints.count) arithmetic fingerprint(s) (\(prints.sorted().joined(separator: "; "))); their numbers can "
            + "differ by rounding as well as by the factor compared (`repro --version` names a build)."]
    }

    /// Per-readout test top-1: one table when every group has the same readouts, else one per group.
    static func readoutTables(_ groups: [RunGroup]) -> [String] {
        let withReadouts = groups.filter { !($0.runs.first?.readoutLabels.isEmpty ?? true) }
        guard !withReadouts.isEmpty else { return [] }
        var out: [String] = []
        func table(_ gs: [RunGroup]) {
            let labels = gs[0].runs[0].readoutLabels
            out.append("")
            out += header(["per readout, top-1 %"] + labels)
            for g in gs {
                out.append(row([g.name] + labels.indices.map { i in
                    fmt(g.runs.compactMap { $0.record.readouts.count > i ? $0.record.readouts[i].top1Pct : nil })
                }))
            }
        }
        if Set(withReadouts.map { $0.runs[0].readoutLabels }).count == 1 {
            table(withReadouts)
        } else {
            for g in withReadouts { table([g]) }
        }
        return out
    }

    /// Each later group against the first, paired by seed.
    static func comparisons(_ groups: [RunGroup]) -> [String] {
        var out: [String] = []
        let base = groups[0]
        for other in groups.dropFirst() {
            let seeds = base.seeds.filter { other.seeds.contains($0) }
            out.append("")
            guard seeds.count >= 2 else {
                out.append("Paired comparison \(other.name) vs \(base.name): needs at least two common seeds (common: "
                    + (seeds.isEmpty ? "none" : seeds.map(String.init).joined(separator: ", ")) + ").")
                continue
            }
            func pick(_ g: RunGroup) -> [ResultsRecord] { seeds.map { s in g.runs.first { $0.record.seed == s }!.record } }
            let a = pick(base), b = pick(other)
            var metrics = predictorMetrics.filter { $0.name != "majority %" }  // a property of the data
            let labelsA = a[0].readouts.map(\.label), labelsB = b[0].readouts.map(\.label)
            if labelsA == labelsB {
                metrics += labelsA.indices.map { i in
                    Metric(name: "\(labelsA[i]) top-1 %") { $0.readouts.count > i ? $0.readouts[i].top1Pct : nil }
                }
            }
            out.append("Paired comparison over seeds \(seeds.map(String.init).joined(separator: ", ")) "
                + "(n = \(seeds.count)): B = \(other.name) minus A = \(base.name), two-sided paired t-test:")
            out.append("")
            out += header(["metric", "A", "B", "B - A", "t", "p"])
            for m in metrics {
                let va = a.map(m.value), vb = b.map(m.value)
                guard va.allSatisfy({ $0 != nil }), vb.allSatisfy({ $0 != nil }) else { continue }
                let x = va.map { $0! }, y = vb.map { $0! }
                guard let t = Stats.pairedTTest(x, y) else { continue }
                out.append(row([m.name, fmt(x), fmt(y), String(format: "%+.2f ± %.2f", t.meanDifference, t.stdDifference),
                                t.t.isFinite ? String(format: "%.2f", t.t) : (t.t > 0 ? "+inf" : "-inf"),
                                t.p < 0.001 ? "< 0.001" : String(format: "%.3f", t.p)]))
            }
        }
        return out
    }
}
