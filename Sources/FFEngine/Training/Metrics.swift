import Foundation

/// One epoch's numbers, as written to metrics.jsonl (one JSON object per line) and
/// metrics.csv (flattened), and stored in checkpoints.
public struct EpochRecord: Codable, Equatable {
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
    /// Selection metric of this run on validation (head, or best layer for Best Pred).
    public var valSelected: Double
    /// 1-based layer with the best validation readout accuracy.
    public var bestLayer: Int?
    /// DTG-FF: T_l per layer after the epoch.
    public var temperatures: [Double]?
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

    /// Starts fresh logs, or (resume) keeps the first `keep` records of the existing ones.
    public func reset(keeping records: [EpochRecord]) throws {
        try? FileManager.default.removeItem(at: jsonl)
        try? FileManager.default.removeItem(at: csv)
        for r in records { try append(r) }
    }

    public func append(_ r: EpochRecord) throws {
        let enc = JSONEncoder()
        enc.keyEncodingStrategy = .convertToSnakeCase
        enc.outputFormatting = [.sortedKeys]
        var line = try enc.encode(r)
        line.append(0x0A)
        try appendData(line, to: jsonl)
        let fm = FileManager.default
        if !fm.fileExists(atPath: csv.path) {
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
        var cols = ["epoch", "lr", "seconds", "images_per_s", "train_head_loss", "train_head_acc", "val_head_acc",
                    "val_head_top5", "val_selected", "best_layer"]
        cols += r.trainUnitLoss.indices.map { "train_l\($0 + 1)_loss" }
        cols += r.trainUnitAccuracy.indices.map { "train_l\($0 + 1)_acc" }
        cols += r.valUnitAccuracy.indices.map { "val_l\($0 + 1)_acc" }
        cols += (r.temperatures ?? []).indices.map { "temperature_l\($0 + 1)" }
        return cols.joined(separator: ",")
    }

    static func csvRow(_ r: EpochRecord) -> String {
        func f(_ x: Double?) -> String { x.map { String(format: "%.6g", $0) } ?? "" }
        var cols = [String(r.epoch), f(r.lr), f(r.seconds), f(r.imagesPerSecond), f(r.trainHeadLoss),
                    f(r.trainHeadAccuracy), f(r.valHeadAccuracy), f(r.valHeadTop5), f(r.valSelected),
                    r.bestLayer.map(String.init) ?? ""]
        cols += r.trainUnitLoss.map(f) + r.trainUnitAccuracy.map(f) + r.valUnitAccuracy.map(f)
        cols += (r.temperatures ?? []).map(f)
        return cols.joined(separator: ",")
    }
}
