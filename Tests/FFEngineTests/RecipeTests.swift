import FFEngine
import Foundation
import XCTest

/// The named recipes are complete, valid and reproduce the papers' stated geometry.
final class RecipeTests: XCTestCase {
    let ctx = ComputeContext(threads: 1)

    func testEveryRecipeValidatesAndRoundTripsThroughJSON() throws {
        let names = Recipes.all.map(\.name)
        XCTAssertEqual(Set(names).count, names.count, "recipe names are unique")
        for r in Recipes.all {
            XCTAssertNoThrow(try r.validate(), r.name)
            XCTAssertEqual(try RecipeConfig.fromJSON(r.json(), source: "test"), r, r.name)
        }
        for n in ["asge-mnist", "asge-fmnist", "asge-cifar10", "asge-cifar100", "asge-vgg11-cifar10",
                  "asge-vgg11-cifar100", "asge-imagenet", "bp-vgg8-cifar100", "dtgff-cifar10", "dtgff-cifar100",
                  "dtgff-vgg11-cifar10", "dtgff-vgg11-cifar100", "dtgff-imagenet100", "bpds-cifar10", "bpds-cifar100",
                  "bpds-vgg11-cifar10", "bpds-vgg11-cifar100", "bpds-imagenet100"] {
            XCTAssertNoThrow(try Recipes.named(n), n)
        }
        XCTAssertThrowsError(try Recipes.named("asge-cifar1000")) { e in
            XCTAssertTrue("\(e)".contains("asge-cifar100"), "suggests the close name: \(e)")
        }
    }

    /// ASGE Table 1: VGG8 with C in {128,256,512} gets P = {2,1,1}, {4,2,1}, {6,3,1}, {8,4,2}.
    func testVGG8PartitionsMatchTable1() throws {
        for (alpha, p) in [(0.5, [2, 1, 1]), (1.0, [4, 2, 1]), (1.5, [6, 3, 1]), (2.0, [8, 4, 2])] {
            var c = try Recipes.named("asge-cifar100")
            c.alpha = alpha
            let net = try Network(ctx, config: c, inputShape: [3, 32, 32], classes: 100)
            // layers: 128, 256, 256, 512, 512, 512, 512 at 32, 32, 16, 16, 8, 4, 2 (the authors' pooling)
            let expected = [p[0], p[1], p[1], p[2], p[2], min(p[2], 4), min(p[2], 2)]
            XCTAssertEqual(net.partitions, expected, "alpha \(alpha)")
        }
    }

    /// ASGE Table 3: Fusion reads 2560 features of layers 2..7; BP and Last Pred read 512.
    func testClassifierSizesMatchTable3() throws {
        let fusion = try Network(ctx, config: try Recipes.named("asge-cifar100"), inputShape: [3, 32, 32], classes: 100)
        XCTAssertEqual(fusion.head?.featureSize, 2560)
        XCTAssertEqual(fusion.head?.taps, [1, 2, 3, 4, 5, 6])
        let bp = try Network(ctx, config: try Recipes.named("bp-vgg8-cifar100"), inputShape: [3, 32, 32], classes: 100)
        XCTAssertEqual(bp.head?.parameters.reduce(0) { $0 + $1.value.count }, 512 * 100 + 100)
        var best = try Recipes.named("asge-cifar100")
        best.pred = "best"
        let b = try Network(ctx, config: best, inputShape: [3, 32, 32], classes: 100)
        XCTAssertNil(b.head)
        XCTAssertEqual(b.units.count, 8, "Best Pred appends a copy of the last conv layer")
        let v11 = try Network(ctx, config: try Recipes.named("asge-vgg11-cifar10"), inputShape: [3, 32, 32], classes: 10)
        XCTAssertEqual(v11.units.map { $0.tapShape[0] }, [128, 256, 256] + Array(repeating: 512, count: 7))
        XCTAssertEqual(v11.units.last?.outputShape, [512, 2, 2])
        // The classifier of Table 3 (25.66e4 parameters for 100 classes): six Linears of 256, 256, 512 x 4.
        XCTAssertEqual(fusion.head?.parameters.reduce(0) { $0 + $1.value.count }, 2560 * 100 + 6 * 100)
    }

    func testSetOverridesAnyFieldAndRejectsUnknownOnes() throws {
        let base = try Recipes.named("asge-cifar10")
        let c = try base.setting("ln_eps=1e-6").setting("pool=avg").setting("subset=1000").setting("pool_after=[1,3]")
        XCTAssertEqual(c.lnEps, 1e-6)
        XCTAssertEqual(c.pool, .avg)
        XCTAssertEqual(c.subset, 1000)
        XCTAssertEqual(c.poolAfter, [1, 3])
        XCTAssertThrowsError(try base.setting("no_such_field=1"))
        XCTAssertThrowsError(try base.setting("pool=square"))
        var bad = base
        bad.pred = "best"
        bad.training = "backprop"
        XCTAssertThrowsError(try bad.validate())
    }
}
