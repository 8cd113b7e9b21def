import Foundation

/// What a reviewer asks of an accuracy: per class, balanced, and against the baselines a
/// classifier must beat (always predicting the most frequent class; guessing).
extension ResultsRecord {
    /// The predictor slot of a tally the record's top-1 comes from (a readout for Best Pred,
    /// else the head), nil when the record has no top-1.
    func selectedSlot(_ t: Tally) -> Int? {
        guard top1Pct != nil else { return nil }
        if predictor == "Best Pred" || config.pred == "best" { return bestPredReadout.map { $0 - 1 } }
        return t.unitCorrect.count
    }

    mutating func addClassStatistics(_ t: Tally, classes: Int) {
        func pct(_ x: Double) -> Double { EpochRecord.pct(x) }
        chancePct = classes > 0 ? pct(1 / Double(classes)) : nil
        guard let counts = t.labelCounts, t.count > 0 else { return }
        classImages = counts
        let names = dataset?.classNames ?? []
        if let m = counts.indices.max(by: { counts[$0] < counts[$1] }) {
            majorityClass = m < names.count ? names[m] : "class \(m)"
            majorityPct = pct(Double(counts[m]) / Double(t.count))
        }
        guard let slot = selectedSlot(t), let matrix = t.matrix(slot: slot) else { return }
        confusion = matrix
        let recall: [Double?] = matrix.indices.map { k in
            counts[k] > 0 ? pct(Double(matrix[k][k]) / Double(counts[k])) : nil
        }
        perClassTop1Pct = recall
        let present = recall.compactMap { $0 }
        balancedTop1Pct = present.isEmpty ? nil : (present.reduce(0, +) / Double(present.count) * 1e6).rounded() / 1e6
        if let top1 = top1Pct, let majority = majorityPct { beatsMajority = top1 > majority }
    }

    /// Console lines: the baselines, a warning when the predictor does not beat the majority
    /// class, balanced and per-class accuracy, and the confusion matrix (up to 20 classes;
    /// larger ones are in the record).
    public var classReport: [String] {
        var lines: [String] = []
        guard let majority = majorityPct, let chance = chancePct else { return lines }
        lines.append("  baselines: majority class '\(majorityClass ?? "?")' \(String(format: "%.2f", majority))%, "
            + "chance \(String(format: "%.2f", chance))%")
        if beatsMajority == false {
            lines.append("  WARNING: the predictor (\(String(format: "%.2f", top1Pct ?? 0))%) does not beat always predicting "
                + "'\(majorityClass ?? "?")'; look at the per-class accuracy below")
        }
        guard let recall = perClassTop1Pct, let matrix = confusion, let counts = classImages else { return lines }
        let names = dataset?.classNames ?? []
        func name(_ k: Int) -> String { k < names.count ? names[k] : "class \(k)" }
        lines.append("  balanced accuracy (mean over classes): \(balancedTop1Pct.map { String(format: "%.2f", $0) } ?? "-")%")
        guard matrix.count <= 20 else {
            let worst = recall.indices.filter { recall[$0] != nil }.sorted { recall[$0]! < recall[$1]! }.prefix(5)
            lines.append("  lowest per-class accuracy: " + worst.map { "\(name($0)) \(String(format: "%.1f", recall[$0]!))%" }
                .joined(separator: ", ") + " (all classes and the confusion matrix: results.json / eval --out)")
            return lines
        }
        let width = max(8, names.prefix(matrix.count).map(\.count).max() ?? 8)
        lines.append("  per class (rows: true class; columns: predicted, in the same order):")
        for k in matrix.indices {
            let acc = recall[k].map { String(format: "%6.2f%%", $0) } ?? "     - "
            lines.append("  " + TextTable.pad(name(k), width) + " " + acc + "  n=" + TextTable.pad("\(counts[k])", 6)
                + "  " + matrix[k].map { TextTable.pad("\($0)", 5, right: true) }.joined(separator: " "))
        }
        return lines
    }
}
