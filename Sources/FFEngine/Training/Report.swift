import Foundation

/// Human-readable lines and tables for runs and evaluations, and results.json.
public enum Report {
    static func pct(_ x: Double?) -> String { x.map { String(format: "%.2f", 100 * $0) } ?? "-" }

    /// The accuracy that stands for the recipe's predictor: the classifier head (Fusion,
    /// Last, BP), or the best-on-validation layer's readout (Best Pred).
    public static func selected(_ t: Tally, config: RecipeConfig, bestLayer: Int?) -> (top1: Double, top5: Double?) {
        if config.pred == "best" {
            let l = (bestLayer ?? 1) - 1
            return (t.unitAccuracy[l], t.unitTop5Accuracy[l])
        }
        return (t.headAccuracy, t.headTop5Accuracy)
    }

    /// The predictor's name in summaries, results and tables.
    public static func predictorName(_ config: RecipeConfig) -> String { predictorNames(config).full }

    /// The predictor's name in progress and epoch lines; nil for Best Pred, which has no head
    /// of its own.
    static func shortPredictorName(_ config: RecipeConfig) -> String? { predictorNames(config).short }

    /// One decision, two spellings: the summary's name and the short one of the progress lines.
    static func predictorNames(_ config: RecipeConfig) -> (full: String, short: String?) {
        switch config.pred {
        case "best": return ("Best Pred", nil)
        case "goodness-mean": return ("Mean goodness of the readouts", "mean goodness")
        case "goodness-last": return ("Goodness of the last readout", "last goodness")
        case "goodness-logistic": return ("Logistic Fusion of the readouts", "Logistic Fusion")
        default:
            if config.headBackprop {
                return config.hasLocalLoss ? ("BP-DeepSup final classifier", "final classifier") : ("BP classifier", "BP classifier")
            }
            if config.pred == "last" { return ("Last Pred", "Last Pred") }
            return config.fusionBatchNorm ? ("Fused classifier (BN+Linear)", "fused classifier") : ("Fusion Pred", "Fusion Pred")
        }
    }

    static func progressFields(_ t: Tally, config: RecipeConfig, runETA: Double?) -> String {
        var parts: [String] = []
        if let last = t.unitMeanLoss.indices.last, t.count > 0, t.unitLoss.contains(where: { $0 != 0 }) {
            parts.append(String(format: "L%d loss %.3f acc %@", last + 1, t.unitMeanLoss[last], pct(t.unitAccuracy[last])))
        }
        if let name = shortPredictorName(config) {
            parts.append(String(format: "%@ loss %.3f acc %@", name, t.headMeanLoss, pct(t.headAccuracy)))
        }
        var text = parts.joined(separator: ", ")
        if let eta = runETA { text += (text.isEmpty ? "" : " | ") + "run ETA " + Progress.formatDuration(eta) }
        return text
    }

    /// The line printed early in a long run: the projected time of the remaining epochs.
    public static func estimateLine(epochs: Int, images: Int, rate: Double, measured: Int, seconds: Double,
                                    validation: Int) -> String {
        let val = validation > 0 ? " plus validating \(validation) images per epoch" : ""
        return String(format: "estimate: %d epochs x %d images at %.1f img/s (measured over the first %d) = about %@"
                      + " on this machine%@; the progress line shows the whole-run ETA", epochs, images, rate, measured,
                      Progress.formatDuration(seconds), val)
    }

    /// The scalars of an epoch record for TensorBoard: tags "train/...", "val/...", percent
    /// accuracies and nats, as in metrics.jsonl.
    static func scalars(_ r: EpochRecord, labels: [String], config: RecipeConfig) -> [(String, Double)] {
        func name(_ i: Int) -> String { (i < labels.count ? labels[i] : "readout \(i + 1)").replacingOccurrences(of: " ", with: "_") }
        var out: [(String, Double)] = [("epoch", Double(r.epoch)), ("lr", r.lr), ("images_per_s", r.imagesPerSecond)]
        for (i, x) in r.trainUnitLoss.enumerated() { out.append(("train/\(name(i))_loss", x)) }
        for (i, x) in r.trainUnitAccuracy.enumerated() { out.append(("train/\(name(i))_acc_pct", 100 * x)) }
        for (i, x) in r.valUnitAccuracy.enumerated() { out.append(("val/\(name(i))_acc_pct", 100 * x)) }
        for (i, x) in r.valUnitLoss.enumerated() { out.append(("val/\(name(i))_loss", x)) }
        if let x = r.trainHeadLoss { out.append(("train/predictor_loss", x)) }
        if let x = r.trainHeadAccuracy { out.append(("train/predictor_acc_pct", 100 * x)) }
        if let x = r.valHeadAccuracy { out.append(("val/predictor_acc_pct", 100 * x)) }
        if let x = r.valHeadLoss { out.append(("val/predictor_loss", x)) }
        if let x = r.valSelected { out.append(("val/selected_pct", 100 * x)) }
        for (i, t) in (r.temperatures ?? []).enumerated() { out.append(("temperature/\(name(i))", t)) }
        return out
    }

    static func epochLine(_ r: EpochRecord, config: RecipeConfig, best: Bool, runETA: Double? = nil) -> String {
        var s = String(format: "epoch %d/%d lr %.3g %.1f img/s", r.epoch, config.epochs, r.lr, r.imagesPerSecond)
        let name = shortPredictorName(config) ?? "head"
        if let h = r.trainHeadAccuracy { s += " | train \(name) \(pct(h))" }
        if !r.valUnitAccuracy.isEmpty {
            s += " | val layers " + r.valUnitAccuracy.map { pct($0) }.joined(separator: " ")
        }
        if let h = r.valHeadAccuracy { s += " | val \(name) \(pct(h))" }
        if let b = r.bestLayer { s += " (best layer \(b))" }
        if let t = r.temperatures { s += " | T " + t.map { String(format: "%.2f", $0) }.joined(separator: " ") }
        if best { s += " * best so far (best.h5)" }
        if let eta = runETA { s += " | run ETA " + Progress.formatDuration(eta) }
        return s
    }

    /// Per-layer readouts, Best Pred, the head, and the comparison line (see
    /// `PaperComparison.line`). `labels` name the readouts (Network.readoutLabels).
    /// `record` adds the baselines, per-class accuracy and confusion matrix of its predictor.
    public static func table(_ t: Tally, config: RecipeConfig, labels: [String], bestLayer: Int?, split: String,
                             selectedFrom: String, comparison: String?, record: ResultsRecord? = nil) -> String {
        var lines = ["", "\(config.name) on \(config.dataset) \(split) (\(t.count) images; model from \(selectedFrom))"]
        // Top-5 of five classes or fewer is 100 % by definition: not shown.
        let showTop5 = !(1...5).contains(t.classes)
        var rows: [(String, Double?, Double?)] = []
        func row(_ name: String, _ top1: Double?, _ top5: Double?) { rows.append((name, top1, top5)) }
        if !t.unitAccuracy.isEmpty {
            for (i, a) in t.unitAccuracy.enumerated() { row("\(i < labels.count ? labels[i] : "readout \(i + 1)") readout", a, nil) }
            let b = bestLayer ?? t.bestLayer ?? 1
            row("Best Pred (\(b - 1 < labels.count ? labels[b - 1] : "readout \(b)"), chosen on val)",
                t.unitAccuracy[b - 1], t.unitTop5Accuracy[b - 1])
        }
        if config.pred != "best" { row(predictorName(config), t.headAccuracy, t.headTop5Accuracy) }
        // One column for all names, however long a block's label is.
        let width = max(36, (rows.map(\.0.count).max() ?? 0) + 2)
        for (name, top1, top5) in rows {
            let t5 = (showTop5 ? top5 : nil).map { "  top-5 \(pct($0))" } ?? ""
            lines.append("  " + TextTable.pad(name, width) + TextTable.pad(pct(top1), 6, right: true) + "%" + t5)
        }
        if let record, !record.classReport.isEmpty {
            lines.append("")
            lines += record.classReport
        }
        if let comparison {
            lines.append("")
            lines.append("  " + comparison)
        }
        return lines.joined(separator: "\n")
    }
}
