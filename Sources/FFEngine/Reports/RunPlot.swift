import Foundation

/// `repro plot`: an SVG of training curves. One row per group of runs, three panels:
/// validation accuracy per readout over epochs (the papers' per-layer figure), training
/// loss per readout, and the predictor (validation selection metric, and the head's
/// training accuracy). Several runs in a group draw their mean with a band of ±1 sample
/// standard deviation.
public enum RunPlot {
    static let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                          "#bcbd22", "#17becf"]
    static let panelWidth = 300.0, panelHeight = 190.0
    static let left = 52.0, top = 34.0, gap = 40.0, rowHeight = 270.0, legendWidth = 170.0

    /// One curve: per epoch the values over the runs that reached it.
    struct Series {
        var label: String
        var color: String
        var dashed = false
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
    static func panel(_ s: [Series], x0: Double, y0: Double, title: String, percent: Bool, log: Bool = false) -> [String] {
        var out = ["<text x=\"\(f(x0))\" y=\"\(f(y0 - 10))\" class=\"title\">\(esc(title))</text>"]
        let all = s.flatMap { $0.points }
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
        for se in s where se.points.contains(where: { $0.2 != nil }) {
            let upper = se.points.map { "\(f(px($0.0))),\(f(py($0.1 + ($0.2 ?? 0))))" }
            let lower = se.points.reversed().map { "\(f(px($0.0))),\(f(py($0.1 - ($0.2 ?? 0))))" }
            out.append("<polygon points=\"\((upper + lower).joined(separator: " "))\" fill=\"\(se.color)\" class=\"band\"/>")
        }
        for se in s {
            let pts = se.points.map { "\(f(px($0.0))),\(f(py($0.1)))" }.joined(separator: " ")
            out.append("<polyline points=\"\(pts)\" stroke=\"\(se.color)\" class=\"line\(se.dashed ? " dashed" : "")\"/>")
            for p in se.points {
                out.append("<circle cx=\"\(f(px(p.0)))\" cy=\"\(f(py(p.1)))\" r=\"2.2\" fill=\"\(se.color)\"/>")
            }
        }
        return out
    }

    public static func svg(_ groups: [RunGroup], title: String? = nil) -> String {
        let width = left + 3 * panelWidth + 2 * (gap + 20) + legendWidth + 10
        let head = title == nil ? 0.0 : 26.0
        let height = head + Double(groups.count) * rowHeight + 10
        var out = [
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(f(width))\" height=\"\(f(height))\" "
                + "viewBox=\"0 0 \(f(width)) \(f(height))\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">",
            "<style>.title{font-size:13px;font-weight:bold}.note{font-size:12px;fill:#888}"
                + ".ytick{font-size:10px;text-anchor:end}.xtick{font-size:10px;text-anchor:middle}"
                + ".xlabel{font-size:11px;text-anchor:middle}.legend{font-size:11px}.group{font-size:14px;font-weight:bold}"
                + ".frame{fill:none;stroke:#444;stroke-width:1}.grid{stroke:#ddd;stroke-width:1}.axis{stroke:#444}"
                + ".band{opacity:0.18;stroke:none}.line{fill:none;stroke-width:1.8}.dashed{stroke-dasharray:5,3}</style>",
            "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
        ]
        if let title { out.append("<text x=\"\(f(left))\" y=\"20\" class=\"group\">\(esc(title))</text>") }
        for (gi, g) in groups.enumerated() {
            let y = head + Double(gi) * rowHeight
            let n = g.runs.count
            let seeds = g.seeds.map(String.init).joined(separator: ",")
            out.append("<text x=\"\(f(left))\" y=\"\(f(y + 16))\" class=\"group\">\(esc(g.name)) — \(n) run\(n == 1 ? "" : "s")"
                + " (seed\(n == 1 ? "" : "s") \(seeds))\(n > 1 ? ", mean ± 1 std" : "")</text>")
            let labels = g.runs.first?.readoutLabels ?? []
            let count = g.runs.map { $0.history.first?.valUnitAccuracy.count ?? 0 }.max() ?? 0
            func name(_ i: Int) -> String { i < labels.count ? labels[i] : "readout \(i + 1)" }
            func color(_ i: Int) -> String { palette[i % palette.count] }
            let val = (0..<count).compactMap { i in
                series(g.runs, label: name(i), color: color(i)) { $0.valUnitAccuracy.count > i ? 100 * $0.valUnitAccuracy[i] : nil }
            }
            let loss = (0..<count).compactMap { i in
                series(g.runs, label: name(i), color: color(i)) { $0.trainUnitLoss.count > i ? $0.trainUnitLoss[i] : nil }
            } + [series(g.runs, label: "head", color: "#000000", dashed: true) { $0.trainHeadLoss }].compactMap { $0 }
            let predictor = g.runs.first.map { Report.predictorName($0.record.config) } ?? "predictor"
            let pred = [
                series(g.runs, label: "predictor, val", color: "#000000") { $0.valSelected.map { 100 * $0 } },
                series(g.runs, label: "head, train acc", color: "#555555", dashed: true) { $0.trainHeadAccuracy.map { 100 * $0 } },
            ].compactMap { $0 }
            let py = y + top + 12
            var x = left
            out += panel(val, x0: x, y0: py, title: "validation accuracy per readout (%)", percent: true)
            x += panelWidth + gap + 20
            out += panel(loss, x0: x, y0: py, title: "training loss (nats, log scale)", percent: false, log: true)
            x += panelWidth + gap + 20
            out += panel(pred, x0: x, y0: py, title: "\(predictor) (%)", percent: true)
            x += panelWidth + 24
            var ly = py + 4
            for se in val.isEmpty ? [] : val {
                out.append(legendItem(se, x: x, y: ly))
                ly += 16
            }
            ly += 8
            for se in pred + loss.filter({ $0.label == "head" }).map({ s in var s = s; s.label = "head, train loss"; return s }) {
                out.append(legendItem(se, x: x, y: ly))
                ly += 16
            }
        }
        out.append("</svg>")
        return out.joined(separator: "\n") + "\n"
    }

    static func legendItem(_ s: Series, x: Double, y: Double) -> String {
        "<line x1=\"\(f(x))\" x2=\"\(f(x + 18))\" y1=\"\(f(y))\" y2=\"\(f(y))\" stroke=\"\(s.color)\" class=\"line\(s.dashed ? " dashed" : "")\"/>"
            + "<text x=\"\(f(x + 24))\" y=\"\(f(y + 4))\" class=\"legend\">\(esc(s.label))</text>"
    }
}
