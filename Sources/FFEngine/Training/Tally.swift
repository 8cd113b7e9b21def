import Foundation

/// Running sums of one epoch (or one evaluation pass). An evaluation tally made with
/// `classes` also counts, per predictor (each readout, then the head), a confusion matrix,
/// so results can give per-class and balanced accuracy and the majority baseline.
public struct Tally {
    public var count = 0
    public var unitLoss: [Double]
    public var unitCorrect: [Int]
    public var unitTop5: [Int]
    public var headLoss = 0.0
    public var headCorrect = 0
    public var headTop5 = 0
    /// Classes of the confusion matrices; 0 when they are not counted.
    public let classes: Int
    /// Per predictor slot (readouts 0..<R, the head at R): classes x classes counts, row =
    /// true class, column = predicted class.
    public var confusion: [[Int]]

    /// Above this many classes no confusion matrices are kept (1000 classes x 9 predictors
    /// would be 72 MB of counts).
    public static let maxConfusionClasses = 200

    public init(units: Int, classes: Int = 0) {
        unitLoss = Array(repeating: 0, count: units)
        unitCorrect = Array(repeating: 0, count: units)
        unitTop5 = Array(repeating: 0, count: units)
        self.classes = classes <= Tally.maxConfusionClasses ? classes : 0
        confusion = self.classes > 0 ? Array(repeating: Array(repeating: 0, count: self.classes * self.classes), count: units + 1) : []
    }

    public var unitAccuracy: [Double] { unitCorrect.map { count > 0 ? Double($0) / Double(count) : 0 } }
    public var unitTop5Accuracy: [Double] { unitTop5.map { count > 0 ? Double($0) / Double(count) : 0 } }
    public var unitMeanLoss: [Double] { unitLoss.map { count > 0 ? $0 / Double(count) : 0 } }
    public var headAccuracy: Double { count > 0 ? Double(headCorrect) / Double(count) : 0 }
    public var headTop5Accuracy: Double { count > 0 ? Double(headTop5) / Double(count) : 0 }
    /// 1-based layer whose readout is most accurate (first on ties), nil without layers.
    public var bestLayer: Int? {
        let acc = unitAccuracy
        return acc.indices.max(by: { acc[$0] < acc[$1] }).map { $0 + 1 }
    }
    public var headMeanLoss: Double { count > 0 ? headLoss / Double(count) : 0 }

    /// Counts the arg-max predictions of `logits` ([B, classes]) for predictor `slot`.
    mutating func confuse(slot: Int, logits: Tensor, labels: [Int32]) {
        guard classes > 0, slot < confusion.count, logits.shape.count == 2, logits.shape[1] == classes else { return }
        for b in 0..<labels.count {
            var best = 0
            var top = logits[b * classes]
            for k in 1..<classes where logits[b * classes + k] > top {
                top = logits[b * classes + k]
                best = k
            }
            let truth = Int(labels[b])
            if truth >= 0 && truth < classes { confusion[slot][truth * classes + best] += 1 }
        }
    }

    /// The confusion matrix of a predictor slot as rows, nil when not counted.
    public func matrix(slot: Int) -> [[Int]]? {
        guard classes > 0, slot < confusion.count else { return nil }
        return (0..<classes).map { Array(confusion[slot][($0 * classes)..<(($0 + 1) * classes)]) }
    }

    /// Images per true class (the same for every slot), nil when not counted.
    public var labelCounts: [Int]? { matrix(slot: 0)?.map { $0.reduce(0, +) } }
}
