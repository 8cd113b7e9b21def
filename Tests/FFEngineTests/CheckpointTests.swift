import FFEngine
import Foundation
import XCTest

final class CheckpointTests: XCTestCase {
    func sample() -> Checkpoint {
        let w = Tensor(shape: [4, 3, 3, 3], values: (0..<108).map { Float($0) * 0.5 - 7 })
        let b = Tensor(shape: [4], values: [1, -2, 3.25, .greatestFiniteMagnitude])
        let s = Tensor(shape: [], values: [42])
        return Checkpoint(tensors: [("params/layer3.conv.weight", w), ("params/layer3.conv.bias", b), ("state/scale", s)],
                          attributes: ["recipe": "asge-vgg8", "config": "{\"lr\": 0.0002, \"name\": \"é\"}", "epoch": "7"],
                          uint64Arrays: [("rng/state", [1, UInt64.max, 12345])])
    }

    func testRoundTripKeepsOrderShapesValuesAndAttributes() throws {
        let url = ShardFixture.tempDir().appendingPathComponent("ck.h5")
        let c = sample()
        try c.write(to: url)
        let r = try Checkpoint.read(from: url)
        XCTAssertEqual(r.tensors.map(\.0), c.tensors.map(\.0))
        for ((_, a), (_, b)) in zip(c.tensors, r.tensors) {
            XCTAssertEqual(a.shape, b.shape)
            XCTAssertEqual(a.array, b.array)
        }
        XCTAssertEqual(r.attributes, c.attributes)
        XCTAssertEqual(r.uint64Array("rng/state"), [1, UInt64.max, 12345])
        XCTAssertEqual(try Checkpoint.readAttributes(from: url)["recipe"], "asge-vgg8")
        // Views (a slice of a larger tensor) are written as their own contents.
        let big = Tensor(shape: [4, 2], values: (0..<8).map(Float.init))
        try Checkpoint(tensors: [("v", big.slice(1, 2))]).write(to: url)
        XCTAssertEqual(try Checkpoint.read(from: url).tensor("v")?.array, [2, 3, 4, 5])
    }

    func testValidationNamesFileParameterAndShapes() throws {
        let url = ShardFixture.tempDir().appendingPathComponent("ck.h5")
        try sample().write(to: url)
        let r = try Checkpoint.read(from: url)
        XCTAssertNoThrow(try r.validate(expected: [("params/layer3.conv.weight", [4, 3, 3, 3]), ("params/layer3.conv.bias", [4])]))
        XCTAssertThrowsError(try r.validate(expected: [("params/layer3.conv.weight", [8, 3, 3, 3]), ("params/layer4.conv.bias", [8])])) { e in
            let text = "\(e)"
            XCTAssertTrue(text.contains(url.path), text)
            XCTAssertTrue(text.contains("parameter 'params/layer3.conv.weight' has shape [4, 3, 3, 3] in the file but the model expects [8, 3, 3, 3]"), text)
            XCTAssertTrue(text.contains("parameter 'params/layer4.conv.bias' (expected shape [8]) is missing"), text)
            XCTAssertEqual((e as? FFError)?.kind, .mismatch)
        }
        XCTAssertEqual(r.problems(expected: [("params/layer3.conv.bias", [4])], allowExtra: false).count, 2)
    }

    func testAtomicWriteLeavesNoPartialFile() throws {
        let dir = ShardFixture.tempDir()
        let url = dir.appendingPathComponent("ck.h5")
        try sample().write(to: url)
        let before = try Data(contentsOf: url)
        // "a" is a dataset, so "a/b" fails after "a" was written.
        let bad = Checkpoint(tensors: [("a", Tensor(zeros: [2])), ("a/b", Tensor(zeros: [2]))])
        XCTAssertThrowsError(try bad.write(to: url)) { e in XCTAssertTrue("\(e)".contains(url.path), "\(e)") }
        XCTAssertEqual(try Data(contentsOf: url), before)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["ck.h5"])
        let fresh = dir.appendingPathComponent("new.h5")
        XCTAssertThrowsError(try bad.write(to: fresh))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["ck.h5"])
        XCTAssertThrowsError(try Checkpoint(tensors: [("x", Tensor(zeros: [1])), ("x", Tensor(zeros: [1]))]).write(to: fresh)) { e in
            XCTAssertTrue("\(e)".contains("used twice"), "\(e)")
        }
        XCTAssertThrowsError(try Checkpoint(attributes: ["ffrepro_order": "x"]).write(to: fresh))
    }

    func testTruncatedAndForeignFilesAreNamed() throws {
        let dir = ShardFixture.tempDir()
        let url = dir.appendingPathComponent("ck.h5")
        try sample().write(to: url)
        let data = try Data(contentsOf: url)
        try data.prefix(data.count / 2).write(to: url)
        XCTAssertThrowsError(try Checkpoint.read(from: url)) { e in
            XCTAssertTrue("\(e)".contains(url.path) && "\(e)".contains("damaged"), "\(e)")
        }
        try Data("hello".utf8).write(to: url)
        XCTAssertThrowsError(try Checkpoint.read(from: url)) { e in
            XCTAssertTrue("\(e)".contains(url.path) && "\(e)".contains("not an HDF5 file"), "\(e)")
        }
        // An HDF5 file that is not a checkpoint (here: a dataset shard).
        let shardDir = ShardFixture.tempDir()
        try ShardFixture.make(shardDir, counts: [3], h: 2, w: 2, c: 1)
        let shard = shardDir.appendingPathComponent("train-00000.h5")
        XCTAssertThrowsError(try Checkpoint.read(from: shard)) { e in
            let text = "\(e)"
            XCTAssertTrue(text.contains(shard.path) && text.contains("not an ffrepro checkpoint") && text.contains("dataset shard"), text)
        }
        let foreign = try Checkpoint.read(from: shard, allowForeign: true)
        XCTAssertEqual(foreign.uint64Arrays.map(\.0), ["images", "labels"])
        XCTAssertThrowsError(try Checkpoint.read(from: dir.appendingPathComponent("none.h5"))) { e in
            XCTAssertTrue("\(e)".contains("does not exist"), "\(e)")
        }
    }
}
