import FFEngine
import Foundation
import XCTest

/// Transfer learning: the safetensors parser against a file written by the reference library,
/// damaged files, and full-size torchvision ResNet18 / MobileNetV3 weights loaded by name into
/// our networks, whose eval-mode forward must match PyTorch's (Fixtures/transfer_forward.h5,
/// from tools/golden/make_transfer_fixture.py) to 1e-4 relative.
final class TransferTests: XCTestCase {
    let ctx = ComputeContext(threads: 2)

    func fixture(_ name: String, _ ext: String) -> URL {
        Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: ext)
            ?? Bundle.module.resourceURL!.appendingPathComponent("Fixtures/\(name).\(ext)")
    }

    func temporary(_ name: String) -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ffrepro-transfer-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir.appendingPathComponent(name)
    }

    func testReadsEveryDtypeOfTheReferenceWriter() throws {
        let st = try SafeTensors.read(fixture("transfer_dtypes", "safetensors"))
        XCTAssertEqual(st.metadata, ["format": "pt", "source": "make_transfer_fixture"])
        func check(_ name: String, _ shape: [Int], rtol: Float) throws {
            let e = try XCTUnwrap(st.entry(name), name)
            XCTAssertEqual(e.shape, shape, name)
            let got = try st.tensor(e).array, want = Formula.values(name, shape: shape)
            for (g, w) in zip(got, want) { XCTAssertEqual(g, w, accuracy: rtol * max(abs(w), 1e-3), "\(name) (\(e.dtype))") }
        }
        try check("a.f32.weight", [3, 4], rtol: 0)
        try check("c.f64.bias", [7], rtol: 0)
        try check("b.f16.weight", [2, 5], rtol: 1.0 / 2048)
        try check("e.bf16.weight", [2, 3], rtol: 1.0 / 256)
        XCTAssertEqual(try st.integers(try XCTUnwrap(st.entry("d.count"))), [3, -1, 1 << 40])
        XCTAssertThrowsError(try st.tensor(try XCTUnwrap(st.entry("d.count"))))
    }

    func testDamagedFilesAreClearErrors() throws {
        let good = try Data(contentsOf: fixture("transfer_dtypes", "safetensors"))
        func expectError(_ data: Data, _ what: String) {
            let url = temporary("bad.safetensors")
            try? data.write(to: url)
            XCTAssertThrowsError(try { let st = try SafeTensors.read(url); for e in st.entries where e.isFloat { _ = try st.tensor(e) } }(), what) {
                XCTAssertTrue("\($0)".contains(url.path), "\(what): the message names the file: \($0)")
            }
        }
        expectError(good.prefix(5), "shorter than the length field")
        expectError(good.prefix(good.count - 3), "truncated data")
        var huge = good
        huge.replaceSubrange(0..<8, with: [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0])
        expectError(huge, "header length beyond the file")
        let text = String(decoding: good, as: UTF8.self)
        expectError(Data(text.replacingOccurrences(of: "\"data_offsets\":[24,80]", with: "\"data_offsets\":[20,76]").utf8),
                    "overlapping tensors")
        expectError(Data(text.replacingOccurrences(of: "\"F64\"", with: "\"C64\"").utf8), "unknown dtype")
        expectError(Data(text.replacingOccurrences(of: "{\"__metadata__\"", with: "[\"__metadata__\"").utf8), "not JSON")
    }

    /// torchvision's published weights layout (stem = imagenet), every name and shape of its
    /// state dict written as the formula would initialise it; our eval forward vs PyTorch's.
    func checkForward(_ arch: String) throws {
        let file = try HDF5File(fixture("transfer_forward", "h5"))
        let entries = try JSONSerialization.jsonObject(with: Data(try file.stringAttribute("state_dict", on: arch).utf8))
            as! [[Any]]
        var floats: [(String, Tensor)] = [], ints: [(String, [Int64])] = []
        for e in entries {
            let name = e[0] as! String, shape = e[1] as! [Int]
            if (e[2] as! String) == "torch.int64" { ints.append((name, [0])) } else {
                floats.append((name, Tensor(shape: shape, values: Formula.values(name, shape: shape))))
            }
        }
        let weights = temporary("\(arch).safetensors")
        try SafeTensors.write(floats, integers: ints, metadata: ["source": "formula"], to: weights)

        var c = try Recipes.named(arch == "resnet18" ? "bp-resnet18-imagenette" : "bp-mobilenetv3-imagenette")
        c.arch = arch
        c.stem = "imagenet"
        let net = try Network(ctx, config: c, inputShape: [3, 64, 64], classes: 10)
        let report = try WeightTransfer.load(ctx, weights, into: net)
        let backbone = Set(net.units.flatMap { $0.parameters.map(\.name) + $0.buffers.map(\.name) })
        XCTAssertEqual(Set(report.loaded), backbone, "\(arch): every backbone tensor loads by torchvision's name")
        XCTAssertEqual(Set(report.missing), Set(net.head!.parameters.map(\.name)), "\(arch): only the new head is missing")
        XCTAssertTrue(report.skipped.contains { $0.name.hasSuffix("num_batches_tracked") })
        XCTAssertTrue(report.skipped.contains { $0.name == (arch == "resnet18" ? "fc.weight" : "classifier.3.weight") })

        var x = Formula.input("transfer/\(arch)", shape: [2, 3, 64, 64])
        for u in net.units { x = u.post.forward(u.body.forward(x, .eval), .eval) }
        let d = try file.dataset("\(arch)/output")
        XCTAssertEqual(x.shape, d.shape)
        let ref = try d.read(as: Float.self)
        let scale = Double(ref.map { abs($0) }.max()!)
        let err = zip(x.array, ref).map { abs(Double($0) - Double($1)) }.max()!
        XCTAssertLessThanOrEqual(err / scale, 1e-4, "\(arch): eval forward differs from PyTorch by \(err) at scale \(scale)")
    }

    func testResNet18MatchesTorchvision() throws { try checkForward("resnet18") }
    func testMobileNetV3SmallMatchesTorchvision() throws { try checkForward("mobilenetv3-small") }
    func testMobileNetV3LargeMatchesTorchvision() throws { try checkForward("mobilenetv3-large") }

    /// A CIFAR-stem network refuses the 7x7 ImageNet stem, naming the tensor and the fix.
    func testBackboneShapeMismatchIsAnError() throws {
        let url = temporary("stem.safetensors")
        try SafeTensors.write([("conv1.weight", Tensor(zeros: [64, 3, 7, 7]))], to: url)
        let net = try Network(ctx, config: try Recipes.named("sff-resnet18-cifar10"), inputShape: [3, 32, 32], classes: 10)
        XCTAssertThrowsError(try WeightTransfer.load(ctx, url, into: net)) { e in
            XCTAssertTrue("\(e)".contains("conv1.weight") && "\(e)".contains("stem=imagenet"), "\(e)")
        }
    }

    /// A repro checkpoint as the source: everything of the same model loads.
    func testOurCheckpointLoadsIntoTheSameModel() throws {
        let c = try Recipes.named("sff-cnn-cifar10")
        let a = try Network(ctx, config: c, inputShape: [3, 32, 32], classes: 10)
        let url = temporary("a.h5")
        try RunCheckpoint.save(Trainer(ctx, net: a), state: RunState(epoch: 0, step: 0, history: []), to: url)
        var other = c
        other.seed = 9
        let b = try Network(ctx, config: other, inputShape: [3, 32, 32], classes: 10)
        let report = try WeightTransfer.load(ctx, url, into: b)
        XCTAssertTrue(report.missing.isEmpty && report.skipped.isEmpty, report.summary)
        for (p, q) in zip(a.parameters, b.parameters) { XCTAssertEqual(p.value.array, q.value.array, p.name) }
    }
}
