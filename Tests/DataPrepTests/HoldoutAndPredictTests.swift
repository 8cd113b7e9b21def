import FFEngine
import FFIO
import Foundation
import XCTest

@testable import DataPrep

/// Stratified validation hold-outs, image-folder defaults that ignore --name, and the
/// predict preprocessing of image files against the loader's.
final class HoldoutAndPredictTests: XCTestCase {
    func testHoldoutIsStratifiedSeededAndKeepsEveryClassInTraining() throws {
        // Unbalanced classes: 60, 30, 9 and 1 items.
        let sizes = [60, 30, 9, 1]
        let labels = sizes.enumerated().flatMap { c, n in [Int32](repeating: Int32(c), count: n) }
        var gen = FixedGenerator(seed: 3)
        let items = Array(0..<labels.count).shuffled(using: &gen)
        let (train, val) = try Holdout.split(items, val: 10, seed: 4, dataset: "t") { labels[$0] }
        XCTAssertEqual(val.count, 10)
        XCTAssertEqual(Set(train).union(val), Set(items))
        XCTAssertTrue(Set(train).isDisjoint(with: val))
        let perClass = (0..<4).map { c in val.filter { labels[$0] == Int32(c) }.count }
        XCTAssertEqual(perClass, [6, 3, 1, 0], "each class gives its share; the single image stays in training")
        // Both lists keep the input order; the same seed gives the same split, another seed another one.
        XCTAssertEqual(train, items.filter { !val.contains($0) })
        XCTAssertEqual(val, items.filter { val.contains($0) })
        XCTAssertEqual(try Holdout.split(items, val: 10, seed: 4, dataset: "t") { labels[$0] }.val, val)
        XCTAssertNotEqual(try Holdout.split(items, val: 10, seed: 5, dataset: "t") { labels[$0] }.val, val)
        XCTAssertThrowsError(try Holdout.split(items, val: 100, seed: 4, dataset: "t") { labels[$0] })
    }

    /// 12 images of 3 classes, 20x14 (not square: the converter resizes and crops).
    func writeFolder(_ root: URL) -> [String] {
        var paths: [String] = []
        for (k, cls) in ["x", "y", "z"].enumerated() {
            let dir = root.appendingPathComponent(cls)
            try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            for i in 0..<4 {
                let px = Fixtures.smoothImage(20, 14, seed: 10 * k + i)
                let url = dir.appendingPathComponent("\(i).png")
                Fixtures.writePNG(url, px, 20, 14)
                paths.append(url.path)
            }
        }
        return paths
    }

    func testImageFolderDefaultsIgnoreTheName() throws {
        let root = Fixtures.tempDir()
        _ = writeFolder(root)
        var o = Fixtures.quiet
        o.size = 8
        o.name = "cifar10"
        let r = try DataPrep.imageFolder(source: root, output: Fixtures.tempDir(), options: o)
        XCTAssertEqual(r.index.dataset, "cifar10")
        XCTAssertEqual(r.index.conversion.val, 1, "a tenth of 12 images, not CIFAR's 5000")
        XCTAssertFalse(DatasetInfo(index: r.index, directory: root, labelKey: "labels").official)
    }

    func testPredictPreprocessingIsTheLoadersForEveryRecipeTransform() throws {
        let root = Fixtures.tempDir()
        let paths = writeFolder(root)
        let out = Fixtures.tempDir()
        var o = Fixtures.quiet
        o.size = 12
        o.val = 0
        let index = try DataPrep.imageFolder(source: root, output: out, options: o).index
        let dataset = DatasetInfo(index: index, directory: out, labelKey: "labels")
        // Both input scalings, and the resize of the stored image before the transform.
        let cases: [(String, Int?, String, Int?)] = [("crop-flip", nil, "rms-scale", nil), ("none", nil, "standardize", nil),
                                                     ("rrc-flip", 8, "standardize", nil), ("none", 10, "rms-scale", nil),
                                                     ("flip", nil, "rms-scale", 16), ("crop-flip", nil, "standardize", 9)]
        for (augment, inputSize, norm, resize) in cases {
            var c = try Recipes.named("asge-cifar10")
            c.augment = augment
            c.inputSize = inputSize
            c.inputNorm = norm
            c.resize = resize
            let aug = RunData.trainAugmentation(c, storedSize: resize ?? 12).evaluation
            let loader = try ShardLoader(directory: out, split: "train",
                                         options: LoaderOptions(shuffle: false, augmentation: aug, prefetch: 0, resize: resize,
                                                                scaling: RunData.inputScaling(c)))
            let fromLoader = try loader.batches(epoch: 0, batchSize: 12).collect()[0].images
            let pre = try ImagePreprocessor(dataset: dataset, config: c, inputShape: loader.sampleShape)
            // The loader's rows are the files in class-folder order, as `paths`.
            XCTAssertEqual(try pre.batch(paths).array, fromLoader.array, "\(augment) \(inputSize ?? 12) \(norm) resize \(resize ?? 12)")
        }
        // One-channel datasets get the luma of the file.
        var gray = dataset
        gray.imageSize = [12, 12, 1]
        gray.channelMean = [0.5]
        gray.channelStd = [0.25]
        var mnist = try Recipes.named("asge-mnist")
        mnist.resize = nil
        let pre = try ImagePreprocessor(dataset: gray, config: mnist, inputShape: [1, 12, 12])
        let rgb = try ImagePreprocessor(dataset: dataset, config: mnist, inputShape: [3, 12, 12])
            .stored(paths[0])
        let luma = try pre.stored(paths[0])
        for i in [0, 17, 143] {
            let (r, g, b) = (Double(rgb[3 * i]), Double(rgb[3 * i + 1]), Double(rgb[3 * i + 2]))
            XCTAssertEqual(Double(luma[i]), (0.299 * r + 0.587 * g + 0.114 * b).rounded(), accuracy: 0.5001)
        }
        XCTAssertThrowsError(try ImagePreprocessor(dataset: dataset, config: try Recipes.named("asge-cifar10"),
                                                   inputShape: [3, 32, 32]))
    }
}

/// A deterministic generator for shuffles in tests.
struct FixedGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return state
    }
}
