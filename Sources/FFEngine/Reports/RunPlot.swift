import Foundation

/// `repro plot`: an SVG of training curves that compares groups of runs on shared axes: one
/// panel per metric (the predictor's validation accuracy with the majority-class and chance
/// lines; the best and last readouts' validation accuracy, or every readout; training
/// losses), one colour per group, its mean over seeds as a line with a band of ±1 sample
/// standard deviation, y-axis labels, and the legend under the panels it explains.
public enum RunPlot {
    public static let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                          "#bcbd22", "#17becf"]
    static let panelWidth = 300.0, panelHeight = 190.0
    static let left = 52.0, top = 34.0, gap = 40.0, rowHeight = 270.0, legendWidth = 170.0

    /// One curve: per epoch the values over the runs that reached it.
    struct Series {
        var label: String
        var color: String
        var dashed = false
        var thin = false
        /// (epoch, mean, std or nil)
        var points: [(Double, Double, Double?)]
    }

    static func series(_ runs: [RunSummary], label: String, color: String, dashed: Bool = false,
                       _ value: (EpochRecord) -> Double?) -> Series? {
        let epochs = Set(runs.flatMap { $0.history.map(\.epoch) }).sorted()
        var pts: [(Double, Double, Double?)] = []
        for e in epochs {
            let v = runs.compactMap { r in r.history.first { $0.epoch == e }.flatMap(value) }.filter(\.isFinite)
            if let m = Stats.mean(v) { pts.append((Double(e), m, Stats.std(v))) }
        }
        return pts.isEmpty ? nil : Series(label: label, color: color, dashed: dashed, points: pts)
    }

    static func esc(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func f(_ x: Double) -> String { String(format: "%.1f", x) }

    /// "Nice" axis ticks covering [lo, hi].
    static func ticks(_ lo: Double, _ hi: Double, count: Int = 5) -> [Double] {
        let span = max(hi - lo, 1e-9)
        let raw = span / Double(count)
        let mag = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 2.5, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? 10 * mag
        var t = (lo / step).rounded(.up) * step
        var out: [Double] = []
        while t <= hi + step * 1e-9 { out.append(t); t += step }
        return out
    }

    static func tickText(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e6 ? String(Int(v)) : String(format: "%g", v)
    }

    /// Ticks 1, 2, 5 per decade covering [lo, hi] (lo > 0), for logarithmic axes.
    static func logTicks(_ lo: Double, _ hi: Double) -> [Double] {
        var out: [Double] = []
        var decade = pow(10, floor(log10(lo)))
        while decade <= hi {
            for m in [1.0, 2, 5] where m * decade >= lo * (1 - 1e-9) && m * decade <= hi * (1 + 1e-9) { out.append(m * decade) }
            decade *= 10
        }
        return out
    }

    /// One panel at (x0, y0): axes, ticks, bands, lines and point markers. `log`: a
    /// logarithmic y axis (losses of layers that differ by an order of magnitude).
    static func panel(_ s: [Series], x0: Double, y0: Double, title: String, yLabel: String, percent: Bool, log: Bool = false,
                      references: [(value: Double, label: String, dotted: Bool)] = []) -> [String] {
        var out = ["<text x=\"\(f(x0))\" y=\"\(f(y0 - 10))\" class=\"title\">\(esc(title))</text>"]
        out.append("<text transform=\"translate(\(f(x0 - 38)),\(f(y0 + panelHeight / 2))) rotate(-90)\" class=\"ylabel\">"
            + "\(esc(yLabel))</text>")
        let all = s.flatMap { $0.points } + references.map { (1.0, $0.value, nil) }
        guard !all.isEmpty else {
            out.append("<text x=\"\(f(x0 + 20))\" y=\"\(f(y0 + panelHeight / 2))\" class=\"note\">not measured</text>")
            return out
        }
        let maxEpoch = all.map(\.0).max()!
        let (xLo, xHi) = (1.0, max(2.0, maxEpoch))
        var yLo = all.map { $0.1 - ($0.2 ?? 0) }.min()!, yHi = all.map { $0.1 + ($0.2 ?? 0) }.max()!
        let positive = all.map(\.1).filter { $0 > 0 }
        let logScale = log && !positive.isEmpty
        if logScale {
            // Bands may reach below zero; the axis starts at the smallest mean's decade step.
            yLo = max(yLo, positive.min()! / 2)
            yLo = logTicks(pow(10, floor(log10(yLo))), yLo).last ?? yLo
            yHi = max(yHi, yLo * 2)
        } else if percent {
            yLo = max(0, (yLo / 10).rounded(.down) * 10)
            yHi = min(100, max(yLo + 10, (yHi / 10).rounded(.up) * 10))
        } else {
            yLo = max(0, yLo - 0.05 * (yHi - yLo))
            yHi = yHi + 0.05 * max(yHi - yLo, 1e-3)
        }
        func px(_ e: Double) -> Double { x0 + (e - xLo) / (xHi - xLo) * panelWidth }
        func py(_ v: Double) -> Double {
            if logScale {
                let t = (Foundation.log(max(v, yLo)) - Foundation.log(yLo)) / (Foundation.log(yHi) - Foundation.log(yLo))
                return y0 + panelHeight - t * panelHeight
            }
            return y0 + panelHeight - (v - yLo) / max(yHi - yLo, 1e-12) * panelHeight
        }
        out.append("<rect x=\"\(f(x0))\" y=\"\(f(y0))\" width=\"\(f(panelWidth))\" height=\"\(f(panelHeight))\" class=\"frame\"/>")
        for t in logScale ? logTicks(yLo, yHi) : ticks(yLo, yHi) {
            out.append("<line x1=\"\(f(x0))\" x2=\"\(f(x0 + panelWidth))\" y1=\"\(f(py(t)))\" y2=\"\(f(py(t)))\" class=\"grid\"/>")
            out.append("<text x=\"\(f(x0 - 6))\" y=\"\(f(py(t) + 4))\" class=\"ytick\">\(tickText(t))</text>")
        }
        let xt = ticks(xLo, xHi, count: min(6, Int(xHi - xLo))).filter { $0 == $0.rounded() }
        for t in xt {
            out.append("<line x1=\"\(f(px(t)))\" x2=\"\(f(px(t)))\" y1=\"\(f(y0 + panelHeight))\" y2=\"\(f(y0 + panelHeight + 4))\" class=\"axis\"/>")
            out.append("<text x=\"\(f(px(t)))\" y=\"\(f(y0 + panelHeight + 16))\" class=\"xtick\">\(tickText(t))</text>")
        }
        out.append("<text x=\"\(f(x0 + panelWidth / 2))\" y=\"\(f(y0 + panelHeight + 32))\" class=\"xlabel\">epoch</text>")
        for r in references where r.value >= yLo && r.value <= yHi {
            out.append("<line x1=\"\(f(x0))\" x2=\"\(f(x0 + panelWidth))\" y1=\"\(f(py(r.value)))\" y2=\"\(f(py(r.value)))\" "
                + "class=\"\(r.dotted ? "chance" : "majority")\"/>")
            out.append("<text x=\"\(f(x0 + panelWidth - 4))\" y=\"\(f(py(r.value) - 3))\" class=\"reflabel\">\(esc(r.label))</text>")
        }
        for se in s where se.points.contains(where: { $0.2 != nil }) {
            let upper = se.points.map { "\(f(px($0.0))),\(f(py($0.1 + ($0.2 ?? 0))))" }
            let lower = se.points.reversed().map { "\(f(px($0.0))),\(f(py($0.1 - ($0.2 ?? 0))))" }
            out.append("<polygon points=\"\((upper + lower).joined(separator: " "))\" fill=\"\(se.color)\" class=\"band\"/>")
        }
        for se in s {
            let pts = se.points.map { "\(f(px($0.0))),\(f(py($0.1)))" }.joined(separator: " ")
            out.append("<polyline points=\"\(pts)\" stroke=\"\(se.color)\" class=\"line\(se.dashed ? " dashed" : "")\(se.thin ? " thin" : "")\"/>")
            for p in se.points {
                out.append("<circle cx=\"\(f(px(p.0)))\" cy=\"\(f(py(p.1)))\" r=\"2.2\" fill=\"\(se.color)\"/>")
            }
        }
        return out
    }

    public static func svg(_ groups: [RunGroup], title: String? = nil, allReadouts: Bool = false) -> String {
        let width = left + 3 * panelWidth + 2 * (gap + 20) + 20
        let head = title == nil ? 0.0 : 26.0
        let legendTop = head + top + 12 + panelHeight + 48
        let height = legendTop + Double(groups.count + 2) * 16 + 12
        var out = [
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(f(width))\" height=\"\(f(height))\" "
                + "viewBox=\"0 0 \(f(width)) \(f(height))\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">",
            "<style>.title{font-size:13px;font-weight:bold}.note{font-size:12px;fill:#888}"
                + ".ytick{font-size:10px;text-anchor:end}.xtick{font-size:10px;text-anchor:middle}"
                + ".xlabel{font-size:11px;text-anchor:middle}.ylabel{font-size:11px;text-anchor:middle}"
                + ".legend{font-size:11px}.group{font-size:14px;font-weight:bold}.reflabel{font-size:9px;fill:#666;text-anchor:end}"
                + ".frame{fill:none;stroke:#444;stroke-width:1}.grid{stroke:#ddd;stroke-width:1}.axis{stroke:#444}"
                + ".majority{stroke:#888;stroke-width:1.2;stroke-dasharray:6,3}.chance{stroke:#888;stroke-width:1.2;stroke-dasharray:1,3}"
                + ".band{opacity:0.18;stroke:none}.line{fill:none;stroke-width:1.8}.dashed{stroke-dasharray:5,3}"
                + ".thin{stroke-width:1;opacity:0.7}</style>",
            "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
        ]
        if let title { out.append("<text x=\"\(f(left))\" y=\"20\" class=\"group\">\(esc(title))</text>") }
        func color(_ g: Int) -> String { palette[g % palette.count] }
        var pred: [Series] = [], readouts: [Series] = [], losses: [Series] = []
        var majorities: [Double] = [], chances: [Double] = []
        for (gi, g) in groups.enumerated() {
            let c = color(gi)
            if let s = series(g.runs, label: g.name, color: c, { $0.valSelected.map { 100 * $0 } }) { pred.append(s) }
            let count = g.runs.map { $0.history.last?.valUnitAccuracy.count ?? 0 }.max() ?? 0
            // The best readout is the one the runs chose on validation (their Best Pred).
            let chosen = g.runs.compactMap { $0.record.bestPredReadout ?? $0.history.last?.bestLayer }
            let best = chosen.isEmpty ? nil : Dictionary(grouping: chosen, by: { $0 }).max { $0.value.count < $1.value.count }?.key
            let shown: [Int] = allReadouts ? Array(0..<count) : Array(Set([best.map { $0 - 1 }, count > 0 ? count - 1 : nil]
                .compactMap { $0 })).sorted()
            for i in shown {
                let label = g.runs.first?.readoutLabels.indices.contains(i) == true ? g.runs.first!.readoutLabels[i] : "readout \(i + 1)"
                let isLast = i == count - 1 && i != (best ?? 0) - 1
                if var s = series(g.runs, label: "\(g.name): \(label)", color: c, dashed: isLast,
                                  { $0.valUnitAccuracy.count > i ? 100 * $0.valUnitAccuracy[i] : nil }) {
                    s.thin = allReadouts
                    readouts.append(s)
                }
            }
            if let s = series(g.runs, label: g.name, color: c, { $0.trainHeadLoss }) { losses.append(s) }
            if count > 0, let s = series(g.runs, label: g.name, color: c, dashed: true, { $0.trainUnitLoss.last }) { losses.append(s) }
            majorities += g.runs.compactMap(\.record.majorityPct)
            chances += g.runs.compactMap(\.record.chancePct)
        }
        var refs: [(value: Double, label: String, dotted: Bool)] = []
        if let m = Stats.mean(majorities) { refs.append((m, "majority class (test split)", false)) }
        if let ch = Stats.mean(chances) { refs.append((ch, "chance", true)) }
        let py = head + top + 12
        var x = left
        out += panel(pred, x0: x, y0: py, title: "predictor: validation accuracy", yLabel: "accuracy (%)", percent: true,
                     references: refs)
        x += panelWidth + gap + 20
        out += panel(readouts, x0: x, y0: py, title: allReadouts ? "every readout: validation accuracy"
                        : "readouts: validation accuracy", yLabel: "accuracy (%)", percent: true, references: refs)
        x += panelWidth + gap + 20
        out += panel(losses, x0: x, y0: py, title: "training loss",
                     yLabel: "cross-entropy (nats, log)", percent: false, log: true)
        var ly = legendTop
        for (gi, g) in groups.enumerated() {
            let n = g.runs.count
            let seeds = g.seeds.map(String.init).joined(separator: ",")
            let swatch = Series(label: "\(g.name): \(n) run\(n == 1 ? "" : "s") (seed\(n == 1 ? "" : "s") \(seeds))"
                + (n > 1 ? ", mean ± 1 std" : "") + " — \(g.runs.first.map { Report.predictorName($0.record.config) } ?? "")",
                color: color(gi), points: [])
            out.append(legendItem(swatch, x: left, y: ly))
            ly += 16
        }
        let styles = allReadouts ? "Every readout of a group in its colour (dashed: the last); training loss: predictor "
            + "solid, last readout dashed." : "Readouts: solid the one chosen on validation (Best Pred), dashed the last; "
            + "training loss: predictor solid, last readout dashed."
        out.append("<text x=\"\(f(left))\" y=\"\(f(ly + 4))\" class=\"legend\">\(esc(styles))</text>")
        out.append("<text x=\"\(f(left))\" y=\"\(f(ly + 20))\" class=\"legend\">Bands: ±1 sample std over the seeds of "
            + "a group. Grey dashed: always predicting the majority class; grey dotted: chance.</text>")
        out.append("</svg>")
        return out.joined(separator: "\n") + "\n"
    }

    static func legendItem(_ s: Series, x: Double, y: Double) -> String {
        "<line x1=\"\(f(x))\" x2=\"\(f(x + 18))\" y1=\"\(f(y))\" y2=\"\(f(y))\" stroke=\"\(s.color)\" class=\"line\(s.dashed ? " dashed" : "")\"/>"
            + "<text x=\"\(f(x + 24))\" y=\"\(f(y + 4))\" class=\"legend\">\(esc(s.label))</text>"
    }
}
