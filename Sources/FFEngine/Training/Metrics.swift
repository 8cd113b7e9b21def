import Foundation

/// One epoch's numbers, as written to metrics.jsonl (one JSON object per line) and
/// metrics.csv (flattened), and stored in checkpoints. In memory accuracies are fractions;
/// on disk they are percent, in keys ending in `_pct` (docs/results.md, schema v2).
/// Losses are mean cross-entropies in nats.
public struct EpochRecord: Equatable {
    public var epoch: Int              // 1-based
    public var lr: Double
    public var seconds: Double
    public var imagesPerSecond: Double
    public var trainUnitLoss: [Double]
    public var trainUnitAccuracy: [Double]
    public var trainHeadLoss: Double?
    public var trainHeadAccuracy: Double?
    public var valUnitAccuracy: [Double]
    public var valHeadAccuracy: Double?
    public var valHeadTop5: Double?
    /// Selection metric of this run on validation (head, or best layer for Best Pred);
    /// nil when the run has no validation images (then the last epoch is selected).
    public var valSelected: Double?
    /// 1-based readout with the best validation accuracy.
    public var bestLayer: Int?
    /// DTG-FF: T_l per layer after the epoch.
    public var temperatures: [Double]?
    /// Mean validation cross-entropy per readout and of the predictor (nats); empty / nil
    /// without validation (and in records written before they were logged).
    public var valUnitLoss: [Double] = []
    public var valHeadLoss: Double?

    public init(epoch: Int, lr: Double, seconds: Double, imagesPerSecond: Double, trainUnitLoss: [Double],
                trainUnitAccuracy: [Double], trainHeadLoss: Double?, trainHeadAccuracy: Double?,
                valUnitAccuracy: [Double], valHeadAccuracy: Double?, valHeadTop5: Double?, valSelected: Double?,
                bestLayer: Int?, temperatures: [Double]?, valUnitLoss: [Double] = [], valHeadLoss: Double? = nil) {
        self.epoch = epoch
        self.lr = lr
        self.seconds = seconds
        self.imagesPerSecond = imagesPerSecond
        self.trainUnitLoss = trainUnitLoss
        self.trainUnitAccuracy = trainUnitAccuracy
        self.trainHeadLoss = trainHeadLoss
        self.trainHeadAccuracy = trainHeadAccuracy
        self.valUnitAccuracy = valUnitAccuracy
        self.valHeadAccuracy = valHeadAccuracy
        self.valHeadTop5 = valHeadTop5
        self.valSelected = valSelected
        self.bestLayer = bestLayer
        self.temperatures = temperatures
        self.valUnitLoss = valUnitLoss
        self.valHeadLoss = valHeadLoss
    }

    /// The validation selection metric on the grid the files store (percent, 6 decimals),
    /// so that a value read back from a checkpoint ranks exactly like the one computed:
    /// a resumed run picks the same best epoch as an uninterrupted one.
    /// Without validation every epoch ranks alike (the run keeps the last one).
    public var selectionRank: Int64 { valSelected.map { Int64(($0 * 1e8).rounded()) } ?? Int64.min }

    /// The epoch a run selects from `history`: the best validation rank (first on ties), or
    /// without validation the last epoch. Used for best.h5, resume and results.json alike.
    public static func selected(_ history: [EpochRecord]) -> EpochRecord? {
        history.contains { $0.valSelected != nil } ? history.max { $0.selectionRank < $1.selectionRank } : history.last
    }

    /// Percent with 6 decimals: k/n accuracies print as short decimals.
    static func pct(_ x: Double) -> Double { (x * 1e8).rounded() / 1e6 }
    static func pct(_ x: Double?) -> Double? { x.map(pct) }
}

extension EpochRecord: Codable {
    enum Key: String, CodingKey {
        case epoch, lr, seconds, temperatures
        case imagesPerS = "images_per_s"
        case trainReadoutLoss = "train_readout_loss", trainReadoutAccPct = "train_readout_acc_pct"
        case trainHeadLoss = "train_head_loss", trainHeadAccPct = "train_head_acc_pct"
        case valReadoutAccPct = "val_readout_acc_pct", valHeadAccPct = "val_head_acc_pct"
        case valHeadTop5Pct = "val_head_top5_pct", valSelectedPct = "val_selected_pct", bestReadout = "best_readout"
        case valReadoutLoss = "val_readout_loss", valHeadLoss = "val_head_loss"
    }

    /// Keys of files written before schema v2 (accuracies as fractions).
    enum LegacyKey: String, CodingKey {
        case imagesPerSecond = "images_per_second", trainUnitLoss = "train_unit_loss"
        case trainUnitAccuracy = "train_unit_accuracy", trainHeadAccuracy = "train_head_accuracy"
        case valUnitAccuracy = "val_unit_accuracy", valHeadAccuracy = "val_head_accuracy", valHeadTop5 = "val_head_top5"
        case valSelected = "val_selected", bestLayer = "best_layer"
    }

    /// Every key is written, `null` where nothing was measured (no head, no validation).
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(epoch, forKey: .epoch)
        try c.encode(lr, forKey: .lr)
        try c.encode(seconds, forKey: .seconds)
        try c.encode(imagesPerSecond, forKey: .imagesPerS)
        try c.encode(trainUnitLoss, forKey: .trainReadoutLoss)
        try c.encode(trainUnitAccuracy.map(EpochRecord.pct), forKey: .trainReadoutAccPct)
        try c.encode(trainHeadLoss, forKey: .trainHeadLoss)
        try c.encode(EpochRecord.pct(trainHeadAccuracy), forKey: .trainHeadAccPct)
        try c.encode(valUnitAccuracy.map(EpochRecord.pct), forKey: .valReadoutAccPct)
        try c.encode(EpochRecord.pct(valHeadAccuracy), forKey: .valHeadAccPct)
        try c.encode(EpochRecord.pct(valHeadTop5), forKey: .valHeadTop5Pct)
        try c.encode(EpochRecord.pct(valSelected), forKey: .valSelectedPct)
        try c.encode(bestLayer, forKey: .bestReadout)
        try c.encode(temperatures, forKey: .temperatures)
        try c.encode(valUnitLoss, forKey: .valReadoutLoss)
        try c.encode(valHeadLoss, forKey: .valHeadLoss)
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        epoch = try c.decode(Int.self, forKey: .epoch)
        lr = try c.decode(Double.self, forKey: .lr)
        seconds = try c.decode(Double.self, forKey: .seconds)
        trainHeadLoss = try c.decodeIfPresent(Double.self, forKey: .trainHeadLoss)
        temperatures = try c.decodeIfPresent([Double].self, forKey: .temperatures)
        valUnitLoss = try c.decodeIfPresent([Double].self, forKey: .valReadoutLoss) ?? []
        valHeadLoss = try c.decodeIfPresent(Double.self, forKey: .valHeadLoss)
        if c.contains(.valSelectedPct) {
            func frac(_ x: Double?) -> Double? { x.map { $0 / 100 } }
            imagesPerSecond = try c.decode(Double.self, forKey: .imagesPerS)
            trainUnitLoss = try c.decode([Double].self, forKey: .trainReadoutLoss)
            trainUnitAccuracy = try c.decode([Double].self, forKey: .trainReadoutAccPct).map { $0 / 100 }
            trainHeadAccuracy = frac(try c.decodeIfPresent(Double.self, forKey: .trainHeadAccPct))
            valUnitAccuracy = try c.decode([Double].self, forKey: .valReadoutAccPct).map { $0 / 100 }
            valHeadAccuracy = frac(try c.decodeIfPresent(Double.self, forKey: .valHeadAccPct))
            valHeadTop5 = frac(try c.decodeIfPresent(Double.self, forKey: .valHeadTop5Pct))
            valSelected = try c.decodeIfPresent(Double.self, forKey: .valSelectedPct).map { $0 / 100 }
            bestLayer = try c.decodeIfPresent(Int.self, forKey: .bestReadout)
        } else {
            let l = try decoder.container(keyedBy: LegacyKey.self)
            imagesPerSecond = try l.decode(Double.self, forKey: .imagesPerSecond)
            trainUnitLoss = try l.decode([Double].self, forKey: .trainUnitLoss)
            trainUnitAccuracy = try l.decode([Double].self, forKey: .trainUnitAccuracy)
            trainHeadAccuracy = try l.decodeIfPresent(Double.self, forKey: .trainHeadAccuracy)
            valUnitAccuracy = try l.decode([Double].self, forKey: .valUnitAccuracy)
            valHeadAccuracy = try l.decodeIfPresent(Double.self, forKey: .valHeadAccuracy)
            valHeadTop5 = try l.decodeIfPresent(Double.self, forKey: .valHeadTop5)
            valSelected = try l.decode(Double.self, forKey: .valSelected)
            bestLayer = try l.decodeIfPresent(Int.self, forKey: .bestLayer)
        }
    }

    /// Compact JSON with sorted keys (one metrics.jsonl line, or a checkpoint's history).
    public static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return e
    }()

    /// Reads one record or a list; no key strategy (the keys are spelled out above).
    public static let decoder = JSONDecoder()

    /// The records of a metrics.jsonl file (a line that does not parse is an error naming it).
    public static func readLines(_ url: URL) throws -> [EpochRecord] {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw FFError(.missing, "Cannot read \(url.path).", file: url)
        }
        var out: [EpochRecord] = []
        for (n, line) in String(decoding: data, as: UTF8.self).split(separator: "\n").enumerated()
        where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            do {
                out.append(try decoder.decode(EpochRecord.self, from: Data(line.utf8)))
            } catch {
                throw FFError(.corrupt, "\(url.path), line \(n + 1), is not an epoch record of repro run (\(error)).", file: url)
            }
        }
        return out
    }
}

/// Appends epoch records to metrics.jsonl and metrics.csv in the run directory. Each
/// append rewrites nothing: a crash loses at most the line being written.
public final class MetricsLog {
    public let jsonl: URL
    public let csv: URL

    public init(directory: URL) {
        jsonl = directory.appendingPathComponent("metrics.jsonl")
        csv = directory.appendingPathComponent("metrics.csv")
    }

    /// Starts the logs with `records` (none for a new run; on resume, the history stored
    /// in the checkpoint), each file replaced atomically.
    public func reset(keeping records: [EpochRecord]) throws {
        var lines = Data()
        for r in records {
            lines.append(try EpochRecord.encoder.encode(r))
            lines.append(0x0A)
        }
        try AtomicFile.write(lines, to: jsonl)
        let rows = records.first.map { [MetricsLog.csvHeader($0)] + records.map(MetricsLog.csvRow) } ?? []
        try AtomicFile.write(Data(rows.map { $0 + "\n" }.joined().utf8), to: csv)
    }

    public func append(_ r: EpochRecord) throws {
        var line = try EpochRecord.encoder.encode(r)
        line.append(0x0A)
        try appendData(line, to: jsonl)
        if (AtomicFile.size(of: csv) ?? 0) == 0 {
            try appendData(Data((MetricsLog.csvHeader(r) + "\n").utf8), to: csv)
        }
        try appendData(Data((MetricsLog.csvRow(r) + "\n").utf8), to: csv)
    }

    private func appendData(_ d: Data, to url: URL) throws {
        if !FileManager.default.fileExists(atPath: url.path) {
            guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
                throw FFError(.io, "cannot create \(url.path); check that the run directory is writable.", file: url)
            }
        }
        let h = try FileHandle(forWritingTo: url)
        defer { try? h.close() }
        try h.seekToEnd()
        try h.write(contentsOf: d)
    }

    static func csvHeader(_ r: EpochRecord) -> String {
        var cols = ["epoch", "lr", "seconds", "images_per_s", "train_head_loss", "train_head_acc_pct", "val_head_acc_pct",
                    "val_head_top5_pct", "val_selected_pct", "best_readout"]
        cols += r.trainUnitLoss.indices.map { "train_r\($0 + 1)_loss" }
        cols += r.trainUnitAccuracy.indices.map { "train_r\($0 + 1)_acc_pct" }
        cols += r.valUnitAccuracy.indices.map { "val_r\($0 + 1)_acc_pct" }
        cols += (r.temperatures ?? []).indices.map { "temperature_r\($0 + 1)" }
        cols += ["val_head_loss"] + r.valUnitLoss.indices.map { "val_r\($0 + 1)_loss" }
        return cols.joined(separator: ",")
    }

    static func csvRow(_ r: EpochRecord) -> String {
        func f(_ x: Double?) -> String { x.map { String(format: "%.6g", $0) } ?? "" }
        func p(_ x: Double?) -> String { x.map { String(format: "%.4f", 100 * $0) } ?? "" }
        var cols = [String(r.epoch), f(r.lr), f(r.seconds), f(r.imagesPerSecond), f(r.trainHeadLoss),
                    p(r.trainHeadAccuracy), p(r.valHeadAccuracy), p(r.valHeadTop5), p(r.valSelected),
                    r.bestLayer.map(String.init) ?? ""]
        cols += r.trainUnitLoss.map(f) + r.trainUnitAccuracy.map(p) + r.valUnitAccuracy.map(p)
        cols += (r.temperatures ?? []).map(f)
        cols += [f(r.valHeadLoss)] + r.valUnitLoss.map(f)
        return cols.joined(separator: ",")
    }
}
