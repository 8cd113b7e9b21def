import FFEngine
import Foundation
import TestScratch
import XCTest

/// Words, help and small options a new user trips over (issue 19 item 7).
final class WordingTests: XCTestCase {
    var cli: CLI { CLI(cwd: TrustWorkspace.shared.work) }

    func testTypoSuggestionsByEditDistance() throws {
        let r = try cli.run(["run", "asge-cifr10"])
        XCTAssertTrue(r.err.contains("unknown recipe 'asge-cifr10'. Did you mean asge-cifar10"), r.err)
        let s = try cli.run(["run", "asge-cifar10", "--set", "covv=1"])
        XCTAssertTrue(s.err.contains("unknown config field 'covv'. Did you mean cov"), s.err)
        XCTAssertEqual(Suggest.closest("fmnist-asge", among: ["asge-fmnist", "asge-mnist"]), [])
        XCTAssertEqual(Suggest.closest("lr_min", among: ["min_lr", "lr", "ln_eps"]).first, "lr")
    }

    func testHelpIsWrappedByTheParserAndListsWhatIsAccepted() throws {
        for command in ["run", "predict", "table", "plot", "sweep"] {
            let h = try cli.ok([command, "--help"]).out
            // A hard newline inside a paragraph ends a line where the next word would still fit (80 columns).
            let lines = h.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            let overview = lines.prefix { !$0.hasPrefix("USAGE") }
            for (a, b) in zip(overview, overview.dropFirst()) where !a.isEmpty && !b.isEmpty {
                let next = b.split(separator: " ").first.map(String.init) ?? ""
                XCTAssertGreaterThanOrEqual(a.count + 1 + next.count, 80, "\(command) --help breaks a line early:\n\(a)\n\(b)")
            }
        }
        XCTAssertTrue(try cli.ok(["run", "--help"]).out.contains("goodness-logistic"))
        XCTAssertTrue(try cli.ok(["sweep", "--help"]).out.contains("sweep takes --seeds instead"))
        XCTAssertFalse(try cli.ok(["bench", "--help"]).out.contains("--json"))
        XCTAssertTrue(try cli.ok(["eval", "--help"]).out.contains("Evaluation always splits the images"))
    }

    func testGrayImageFoldersAndPluralThreads() throws {
        let w = TrustWorkspace.shared.work
        let r = try cli.ok(["prep", "imagefolder", "--src", "toy", "--size", "16", "--channels", "1", "--out", "data/toy-gray"])
        XCTAssertNil(r.all.range(of: #"\d{6,}\.\d img/s"#, options: .regularExpression), "no rates from a few ms:\n\(r.all)")
        let index = try jsonObject(w.appendingPathComponent("data/toy-gray/index.json"))
        XCTAssertEqual(index["image_size"] as? [Int], [16, 16, 1])
        XCTAssertTrue(((index["conversion"] as? [String: Any])?["command"] as? String ?? "").contains("--channels 1"))
        XCTAssertEqual(try cli.run(["prep", "imagefolder", "--src", "toy", "--size", "16", "--channels", "2",
                                    "--out", "data/toy-2"]).status, 64)
        let dir = Scratch.directory("gray").appendingPathComponent("run")
        let run = try cli.ok(["run", "asge-cifar10", "--data", "data/toy-gray", "--epochs", "1", "--out", dir.path] + tinyModel)
        XCTAssertTrue(run.out.contains("input 1x16x16") && run.out.contains("1 thread (") && !run.out.contains("1 threads"),
                      run.out)
        XCTAssertTrue(run.out.contains("* best so far (best.h5)") && run.out.contains("val Fusion Pred "), run.out)
        // predict turns a colour file gray the same way the conversion did.
        try cli.ok(["predict", "--checkpoint", dir.appendingPathComponent("best.h5").path, "toy/test/red/000.png"])
    }
}

/// `repro show` gives what a recipe uses, grouped and explained (issue 19 item 1).
final class ShowTests: XCTestCase {
    var cli: CLI { CLI(cwd: TrustWorkspace.shared.work) }

    func testShowGroupsWhatTheRecipeUses() throws {
        let asge = try cli.ok(["show", "asge-fmnist"]).out
        for line in ["Network", "Local objective", "Between layers", "Predictor", "Data", "Optimisation",
                     #"rms_eps +1.928749848e-22"#, #"alpha +1 +ASGE partition factor"#] {
            XCTAssertNotNil(asge.range(of: line, options: .regularExpression), "\(line)\n\(asge)")
        }
        for unused in ["cov ", "cov_directions", "momentum", "aux_kernel", "temperature_init", "fusion_init_first"] {
            XCTAssertFalse(asge.contains("  \(unused)"), "\(unused) does nothing for ASGE\n\(asge)")
        }
        XCTAssertTrue(asge.contains("fields without effect for this recipe are not shown (--all shows them)"))
        let all = try cli.ok(["show", "asge-fmnist", "--all"]).out
        XCTAssertTrue(all.contains("momentum") && all.contains("(no effect here: it applies to optimizer = sgd"), all)
        let bicovg = try cli.ok(["show", "bicovg-cifar100"]).out
        XCTAssertTrue(bicovg.contains("cov_directions") && bicovg.contains("fal_bias"), bicovg)
        // --json is the stored form (config.json), complete.
        let json = try cli.ok(["show", "asge-fmnist", "--json"]).out
        let decoded = try RecipeConfig.fromJSON(json, source: "show")
        XCTAssertEqual(decoded, try Recipes.named("asge-fmnist"))
        // --data shows the config adapted to a dataset.
        let toy = try cli.ok(["show", "asge-cifar10", "--data", "data/toy"]).out
        XCTAssertTrue(toy.contains("adapted to dataset 'toy'") && toy.range(of: "dataset +toy", options: .regularExpression) != nil,
                      toy)
    }
}
