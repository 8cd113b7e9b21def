import FFEngine
import XCTest

/// The projection's model on numbers whose answer is known by hand.
final class ScalingModelTests: XCTestCase {
    let model = ScalingModel(batch: 64, blockSeconds: [0.4, 0.2, 0.2, 0.2], headSeconds: 0, otherSeconds: 0,
                             blockCosts: [4, 2, 2, 2], blockParameterBytes: [1000, 2000, 4000, 8_000_000],
                             headParameterBytes: 0, blockOutputBytes: [4096, 2048, 1024, 512], headFeatureBytes: [0, 0, 0, 0])
    let free = ScalingModel.Link(name: "free", bitsPerSecond: .infinity, latency: 0)

    func testFreeLinksScalePerfectly() {
        let single = model.singleNodeImagesPerSecond
        XCTAssertEqual(single, 64, accuracy: 1e-9)
        XCTAssertEqual(model.project(nodes: 8, stages: 1, link: free).imagesPerSecond, 8 * single, accuracy: 1e-6)
        // Two stages split 0.4 | 0.6 (counted costs 4 | 6): the slower stage sets the pace.
        XCTAssertEqual(model.project(nodes: 2, stages: 2, link: free).imagesPerSecond, 64 / 0.6, accuracy: 1e-6)
    }

    func testTheLastBlocksSumIsNotHidden() {
        let link = ScalingModel.Link(name: "1 Gbit/s", bitsPerSecond: 1e9, latency: 0)
        let p = model.project(nodes: 2, stages: 1, link: link)
        // Compute 1.0 s / 2; the last block's 8 MB ring sum (2 (D-1)/D = 1 of it) starts at its end.
        let lastSum = 8_000_000.0 / (1e9 / 8)
        XCTAssertEqual(64 / p.imagesPerSecond, 0.5 + lastSum, accuracy: 1e-6)
        XCTAssertEqual(p.bytesPerStep, 8_007_000, accuracy: 1e-6)
    }

    func testPipelineSendsTheBoundaryActivations() {
        let link = ScalingModel.Link(name: "slow", bitsPerSecond: 8 * 65536, latency: 0)
        let p = model.project(nodes: 2, stages: 2, link: link)
        // Stage 1 = blocks 1-2 (the tie goes to a lighter last stage), which pass on 2048 B per image.
        XCTAssertEqual(p.bytesPerStep, 64 * 2048, accuracy: 1e-6)
        XCTAssertEqual(64 / p.imagesPerSecond, 2, accuracy: 1e-6)   // 128 KiB at 64 KiB/s outlasts 0.6 s of compute
        XCTAssertEqual(model.layouts(nodes: 8), [1, 2, 4])
    }
}
