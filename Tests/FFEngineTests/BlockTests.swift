import FFEngine
import Foundation
import XCTest

/// The block engine: finite-difference checks of every new backward inside a block
/// (residual add with projection or identity shortcut, squeeze-and-excitation, hard-swish,
/// depthwise conv, BatchNorm in training mode, SFF's aux-conv class goodness), the block
/// layouts, and the trainer against a hand-chained backprop of the same blocks.
final class BlockTests: XCTestCase, GradientChecking {
    let ctx = ComputeContext(threads: 2)

    func goodness(_ shape: [Int], classes: Int = 3, kernel: Int = 1, bias: Bool = true) -> ClassGoodness {
        ClassGoodness(ctx, name: "aux", mapShape: shape, classes: classes, kernel: kernel, bias: bias, seed: 4)
    }

    func conv(_ name: String, _ cin: Int, _ cout: Int, _ k: Int, stride: Int = 1, groups: Int = 1) -> Conv2d {
        Conv2d(ctx, name: name, inChannels: cin, outChannels: cout, kernel: k, stride: stride, padding: k / 2,
               groups: groups, bias: false, initScheme: .kaimingFanOut, seed: 1)
    }

    func testResidualWithProjectionShortcut() {
        let main = Sequential([conv("c1", 4, 6, 3, stride: 2), BatchNorm(ctx, name: "b1", channels: 6),
                               Activation(ctx, .relu), conv("c2", 6, 6, 3), BatchNorm(ctx, name: "b2", channels: 6)])
        let shortcut = Sequential([conv("d0", 4, 6, 1, stride: 2), BatchNorm(ctx, name: "d1", channels: 6)])
        let body = Sequential([Residual(ctx, main: main, shortcut: shortcut, activation: .relu)])
        checkGradients("residual + projection", body: body, objective: goodness([6, 4, 4]),
                       x: random([3, 4, 8, 8], seed: 1), labels: [0, 2, 1])
    }

    func testResidualWithIdentityShortcut() {
        let main = Sequential([conv("c1", 4, 4, 3), BatchNorm(ctx, name: "b1", channels: 4), Activation(ctx, .relu),
                               conv("c2", 4, 4, 3), BatchNorm(ctx, name: "b2", channels: 4)])
        let body = Sequential([conv("stem", 3, 4, 3), Residual(ctx, main: main, shortcut: nil, activation: .relu)])
        checkGradients("residual + identity", body: body, objective: goodness([4, 6, 5]),
                       x: random([4, 3, 6, 5], seed: 2), labels: [1, 0, 2, 1])
    }

    /// MobileNetV3's inverted residual: expand, depthwise, hard-swish, SE, project, identity add.
    func testInvertedResidualWithSqueezeExcite() {
        let main = Sequential([
            conv("e", 4, 12, 1), BatchNorm(ctx, name: "eb", channels: 12, eps: 1e-3, momentum: 0.01),
            Activation(ctx, .hardswish),
            conv("dw", 12, 12, 3, groups: 12), BatchNorm(ctx, name: "db", channels: 12, eps: 1e-3, momentum: 0.01),
            Activation(ctx, .hardswish),
            SqueezeExcite(ctx, name: "se", channels: 12, squeeze: 8, initScheme: .kaimingFanOut, seed: 2),
            conv("p", 12, 4, 1), BatchNorm(ctx, name: "pb", channels: 4, eps: 1e-3, momentum: 0.01),
        ])
        let body = Sequential([Residual(ctx, main: main, shortcut: nil, activation: nil)])
        checkGradients("inverted residual", body: body, objective: goodness([4, 5, 5], kernel: 3, bias: false),
                       x: random([3, 4, 5, 5], seed: 3), labels: [2, 2, 0])
    }

    func testSqueezeExciteAlone() {
        let body = Sequential([Conv2d(ctx, name: "c", inChannels: 3, outChannels: 5, kernel: 3, padding: 1, seed: 3),
                               SqueezeExcite(ctx, name: "se", channels: 5, squeeze: 3, initScheme: .fanInUniform, seed: 3)])
        checkGradients("squeeze-excite", body: body, objective: goodness([5, 4, 4], classes: 4),
                       x: random([2, 3, 4, 4], seed: 4), labels: [3, 1])
    }

    /// g_k = mean over the map of (aux conv output)^2, and the loss is logsumexp(g) - g_y.
    func testClassGoodnessIsMeanSquareAndLogSumExpLoss() {
        let shape = [2, 3, 4, 5]
        let y = random(shape, seed: 5)
        let obj = goodness([3, 4, 5], classes: 4, kernel: 1, bias: true)
        let g = obj.forward(y, cache: false)
        let w = obj.aux.weight.value, b = obj.aux.bias!.value
        var loss = 0.0
        let labels: [Int32] = [1, 3]
        for n in 0..<2 {
            var gs: [Double] = []
            for k in 0..<4 {
                var acc = 0.0
                for p in 0..<20 {
                    var a = Double(b[k])
                    for c in 0..<3 { a += Double(w[k * 3 + c]) * Double(y[(n * 3 + c) * 20 + p]) }
                    acc += a * a
                }
                gs.append(acc / 20)
                XCTAssertEqual(Double(g[n * 4 + k]), acc / 20, accuracy: 1e-4 * max(1, acc / 20), "g[\(n), \(k)]")
            }
            let m = gs.max()!
            loss += m + log(gs.reduce(0) { $0 + exp($1 - m) }) - gs[Int(labels[n])]
        }
        XCTAssertEqual(Ops.softmaxCrossEntropy(ctx, logits: g, labels: labels).loss, loss / 2, accuracy: 1e-5)
        checkGradients("aux conv", body: Sequential([]), objective: obj, x: y, labels: labels)
    }

    // MARK: layouts

    func sffConfig(_ arch: String, blocks: String) -> RecipeConfig {
        var c = RecipeConfig(name: "t", paper: "test", summary: "t", training: "block-local", dataset: "none", arch: arch,
                             lr: 1e-3, minLr: 1e-3, weightDecay: 0, epochs: 1, batchSize: 2)
        c.blocks = blocks
        c.localLoss = "class-goodness"
        c.blockNorm = "layernorm"
        c.pred = "goodness-mean"
        return c
    }

    func testBlockLayoutsOfResNet18AndMobileNetV3() throws {
        func layout(_ arch: String, _ blocks: String, _ shape: [Int] = [3, 32, 32]) throws -> [[String]] {
            try Network(ctx, config: sffConfig(arch, blocks: blocks), inputShape: shape, classes: 10)
                .blocks.map { $0.units.map(\.name) }
        }
        XCTAssertEqual(try layout("resnet18", "per-stage"),
                       [["stem", "layer1.0", "layer1.1"], ["layer2.0", "layer2.1"], ["layer3.0", "layer3.1"],
                        ["layer4.0", "layer4.1"]])
        XCTAssertEqual(try layout("resnet18", "per-residual-unit").first, ["stem", "layer1.0"])
        XCTAssertEqual(try layout("resnet18", "per-unit").count, 9)
        XCTAssertEqual(try layout("resnet18", "whole").count, 1)
        XCTAssertEqual(try layout("resnet18", "3,4,2").map(\.count), [3, 4, 2])
        XCTAssertThrowsError(try layout("resnet18", "3,4")) { XCTAssertTrue("\($0)".contains("9"), "\($0)") }
        XCTAssertThrowsError(try layout("resnet18", "per-block"))
        // MobileNetV3-Small, CIFAR stem: stride-2 blocks at features.2, 4, 9 start the stages.
        XCTAssertEqual(try layout("mobilenetv3-small", "per-stage").map { $0.first! },
                       ["features.0", "features.2", "features.4", "features.9"])
        // Published stem at 224: features.1 downsamples too, and starts no stage (it follows the stem).
        XCTAssertEqual(try layout("mobilenetv3-small", "per-stage", [3, 224, 224]).map { $0.first! },
                       ["features.0", "features.2", "features.4", "features.9"])
        let net = try Network(ctx, config: sffConfig("mobilenetv3-small", blocks: "per-residual-unit"),
                              inputShape: [3, 32, 32], classes: 10)
        XCTAssertEqual(net.units.last!.tapShape, [576, 4, 4], "CIFAR stem: total stride 8")
        XCTAssertEqual(net.readouts.count, net.blocks.count, "one objective per block output")
    }

    /// Shapes of the published networks: ResNet18 at 224 ends at 512x7x7, MobileNetV3-Small
    /// at 576x7x7 and -Large at 960x7x7; parameter counts equal torchvision's without the classifier.
    func testPublishedShapesAndParameterCounts() throws {
        for (arch, channels, params) in [("resnet18", 512, 11_176_512), ("mobilenetv3-small", 576, 927_008),
                                         ("mobilenetv3-large", 960, 2_971_952)] {
            var c = sffConfig(arch, blocks: "whole")
            c.training = "backprop"
            c.pred = "last"
            let net = try Network(ctx, config: c, inputShape: [3, 224, 224], classes: 1000)
            XCTAssertEqual(net.units.last!.outputShape, [channels, 7, 7], arch)
            let backbone = net.units.flatMap(\.parameters).reduce(0) { $0 + $1.value.count }
            XCTAssertEqual(backbone, params, "\(arch) parameters without the classifier")
        }
    }

    // MARK: the trainer against hand-chained backprop

    func testOneWholeBlockEqualsBackpropThroughIt() throws {
        var c = sffConfig("mobilenetv3-small", blocks: "whole")
        c.pred = "goodness-last"
        try assertTrainerMatchesHandChained(c, shape: [2, 3, 16, 16])
    }

    func testSeveralBlocksEachEqualBackpropThroughIt() throws {
        try assertTrainerMatchesHandChained(sffConfig("resnet18", blocks: "2,3,4"), shape: [2, 3, 8, 8])
        var cnn = sffConfig("cnn4", blocks: "per-unit")
        cnn.convNorm = "batch"
        cnn.pool = .max
        cnn.channels = [4, 6, 6, 8]
        cnn.arch = "custom"
        cnn.poolAfter = [2, 3]
        try assertTrainerMatchesHandChained(cnn, shape: [3, 3, 8, 8])
    }
}
