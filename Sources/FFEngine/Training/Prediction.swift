import FFIO
import Foundation

/// The raw scores of one forward pass: every local readout's logits (Network.readouts
/// order) and the predictor's (the head, or the averaged readouts for goodness-*; nil for
/// Best Pred, which predicts with one of the readouts).
public struct Scores {
    public var readouts: [Tensor]
    public var predictor: Tensor?
}

extension Trainer {
    /// Logits of every readout and of the predictor for `images` (evaluation mode). The same
    /// forward as `evaluateBatch` (a test holds the two to the same predictions).
    public func scores(_ images: Tensor) -> Scores {
        var x = images
        var features = HeadFeatures(head: net.head, batch: images.shape[0])
        var readouts: [Tensor] = []
        for block in net.blocks {
            for unit in block.units {
                let y = unit.body.forward(x, .eval)
                features.collect(ctx, unit: unit.index, point: .tap, y)
                if let local = unit.local { readouts.append(local.forward(y, cache: false)) }
                x = unit.post.forward(y, .eval)
                features.collect(ctx, unit: unit.index, point: .output, x)
            }
            x = block.boundary.forward(x, .eval)
        }
        let predictor: Tensor? = net.head.map { $0.forward(features.assemble(), .eval) }
            ?? (config.pred.hasPrefix("goodness-") && !readouts.isEmpty ? predictorScores(readouts) : nil)
        return Scores(readouts: readouts, predictor: predictor)
    }
}

/// Turns image files into network inputs exactly as `repro prep` and the loader do for a
/// checkpoint's dataset: decode (PNG/JPEG), resize the shorter side to the stored size and
/// center-crop (the image-folder converter), gray by ITU-R 601 luma for one-channel
/// datasets, then the evaluation transform of the recipe and the dataset's normalisation.
public struct ImagePreprocessor {
    public let storedSize: [Int]        // [H, W, C]
    public let augmentation: Augmentation
    public let inputShape: [Int]        // [C, H, W]
    /// Images declaring more pixels are refused (decompression bombs); 0 = ffio's default.
    public var maxImagePixels: UInt64 = 0
    let renderer: SampleRenderer

    public init(_ info: CheckpointInfo) throws {
        guard let d = info.dataset else {
            throw FFError(.format, "This checkpoint was written before checkpoints carried their dataset's size and "
                + "normalisation (schema v2); pass --data DIR of the dataset it was trained on.")
        }
        try self.init(dataset: d, config: info.config, inputShape: info.inputShape)
    }

    public init(dataset d: DatasetInfo, config: RecipeConfig, inputShape: [Int]) throws {
        guard d.imageSize.count == 3, d.imageSize[0] == d.imageSize[1], [1, 3].contains(d.imageSize[2]),
              d.channelMean.count == d.imageSize[2], d.channelStd.count == d.imageSize[2],
              d.channelStd.allSatisfy({ $0 > 0 }) else {
            throw FFError(.format, "The checkpoint's dataset description (stored size \(d.imageSize), "
                + "\(d.channelMean.count) channel means) does not describe square 1- or 3-channel images.")
        }
        storedSize = d.imageSize
        augmentation = RunData.trainAugmentation(config, storedSize: config.resize ?? d.imageSize[0]).evaluation
        renderer = SampleRenderer(stored: d.imageSize, resize: config.resize, augmentation: augmentation, color: nil,
                                  scaling: RunData.inputScaling(config), mean: d.channelMean, std: d.channelStd)
        guard renderer.outputShape == inputShape else {
            throw FFError(.mismatch, "The checkpoint's network reads \(inputShape) but its dataset's images give "
                + "\(renderer.outputShape); the checkpoint is inconsistent.")
        }
        self.inputShape = inputShape
    }

    /// The stored-size uint8 image (HWC) of a file, as the converter would store it.
    public func stored(_ path: String) throws -> [UInt8] {
        let (s, c) = (storedSize[0], storedSize[2])
        var rgb = [UInt8](repeating: 0, count: s * s * 3)
        var err = [CChar](repeating: 0, count: 512)
        try RegularFile.check(URL(fileURLWithPath: path), what: "image", hint: "Give PNG or JPEG files.")
        var limits = ffio_image_limits(max_pixels: maxImagePixels, max_file_bytes: 0)
        guard ffio_image_prepare(path, Int32(s), &limits, &rgb, nil, nil, &err, err.count) == 0 else {
            throw FFError(.format, "Cannot read image \(path): \(String(cString: err)).", path: path)
        }
        if c == 3 { return rgb }
        return (0..<(s * s)).map { i in
            let r = Int(rgb[3 * i]), g = Int(rgb[3 * i + 1]), b = Int(rgb[3 * i + 2])
            return UInt8((299 * r + 587 * g + 114 * b + 500) / 1000)
        }
    }

    /// A batch of network inputs [n, C, H, W] for the files.
    public func batch(_ paths: [String]) throws -> Tensor {
        let plane = inputShape.reduce(1, *)
        let out = Tensor(uninitialized: [paths.count] + inputShape)
        for (i, path) in paths.enumerated() {
            let pixels = try stored(path)
            var rng = SeededRandom(seed: 0, stream: "predict")   // evaluation transforms draw nothing
            let rendered = pixels.withUnsafeBufferPointer { renderer.render($0.baseAddress!, rng: &rng, into: out.pointer + i * plane) }
            if !rendered { throw FFError(.io, "Cannot resample \(path): \(String(cString: ffio_last_error())).", path: path) }
        }
        return out
    }
}

/// What `repro predict` says about one image.
public struct ImagePrediction: Codable, Equatable {
    public struct Choice: Codable, Equatable {
        public var classIndex: Int
        public var className: String
        public var probability: Double
    }
    public struct ReadoutVote: Codable, Equatable {
        public var readout: Int          // 1-based
        public var label: String
        public var classIndex: Int
        public var className: String
        public var probability: Double
        public var agrees: Bool          // same class as the predictor's top-1
    }
    public var image: String
    public var predictor: String
    /// The predictor's most probable classes (softmax of its logits), best first.
    public var top: [Choice]
    public var readouts: [ReadoutVote]
    /// Readouts whose top-1 is the predictor's top-1.
    public var agreeing: Int
}

/// A checkpoint ready to classify image files.
public final class Predictor {
    public let info: CheckpointInfo
    public let trainer: Trainer
    public var preprocessor: ImagePreprocessor
    public let readoutLabels: [String]

    /// `dataset` stands in for the description of checkpoints older than schema v2.
    public init(_ ctx: ComputeContext, checkpoint: URL, dataset: DatasetInfo? = nil) throws {
        var info = try RunCheckpoint.describe(checkpoint)
        if info.dataset == nil { info.dataset = dataset }
        self.info = info
        let net = try Network(ctx, config: info.config, inputShape: info.inputShape, classes: info.classes)
        trainer = Trainer(ctx, net: net)
        try RunCheckpoint.load(checkpoint, into: trainer)
        preprocessor = try ImagePreprocessor(info)
        readoutLabels = net.readoutLabels
    }

    static func softmax(_ t: Tensor, row: Int) -> [Double] {
        let k = t.shape[1]
        let logits = (0..<k).map { Double(t[row * k + $0]) }
        let m = logits.max() ?? 0
        let e = logits.map { Foundation.exp($0 - m) }
        let z = e.reduce(0, +)
        return e.map { $0 / z }
    }

    public func predict(_ paths: [String], top k: Int = 5, batchSize: Int = 32) throws -> [ImagePrediction] {
        let names = info.classNames
        var out: [ImagePrediction] = []
        var start = 0
        while start < paths.count {
            let chunk = Array(paths[start..<min(paths.count, start + batchSize)])
            let s = trainer.scores(try preprocessor.batch(chunk))
            let best = info.bestReadout ?? s.readouts.count
            let predictorScores = info.config.pred == "best" ? s.readouts[best - 1] : s.predictor!
            for (i, path) in chunk.enumerated() {
                let p = Predictor.softmax(predictorScores, row: i)
                let order = p.indices.sorted { p[$0] > p[$1] || p[$0] == p[$1] && $0 < $1 }
                let top = order.prefix(min(k, p.count)).map {
                    ImagePrediction.Choice(classIndex: $0, className: names[$0], probability: p[$0])
                }
                let votes = s.readouts.enumerated().map { r, t -> ImagePrediction.ReadoutVote in
                    let q = Predictor.softmax(t, row: i)
                    let c = q.indices.max { q[$0] < q[$1] || q[$0] == q[$1] && $0 > $1 }!
                    return ImagePrediction.ReadoutVote(readout: r + 1, label: readoutLabels[r], classIndex: c,
                                                       className: names[c], probability: q[c], agrees: c == top[0].classIndex)
                }
                out.append(ImagePrediction(image: path, predictor: Report.predictorName(info.config), top: top,
                                           readouts: votes, agreeing: votes.filter(\.agrees).count))
            }
            start += chunk.count
        }
        return out
    }
}
