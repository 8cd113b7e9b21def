import ArgumentParser
import FFEngine
import Foundation

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure kernel GFLOP/s and a recipe's train/inference images/s and peak memory.",
        discussion: """
            Targets:
              kernels      sgemm peak, convolution forward and weight gradient, covariance
                           goodness (GFLOP/s)
              covariance   BiCovG projection path vs explicit covariance vs the conv step
                           (batch 128, K 64; --channels, default 512; --sizes, default
                           8,16; --rounds, default 5)
              asge-vgg8    ASGE VGG8 step, 32x32x3, 100 classes, batch 128 (= asge-cifar100)
              audit        systems audit of a local recipe (--recipe, default dtgff-cifar100)
                           against its backprop twin at the same batch (DTG-FF: BP-DeepSup;
                           SFF: bp-*; BiCovG: bp-vgg16-*, after hybrid blocks of m = 2
                           and 4), and the twin with gradient accumulation (--accumulate
                           K, micro-batch = batch / K)
              scaling      1 process, then 2 MPI ranks data-parallel and pipelined (--recipe,
                           1 thread per rank unless --threads; --repeats alternates), and
                           a projection to 8 and 64 nodes (see docs/distributed.md)
              <recipe>     any recipe, on synthetic data of its input shape
            Without a target: kernels and asge-vgg8. Each model is measured in a fresh child
            process, so its peak RSS is its own.

            --compare-torch runs each model target (default asge-vgg8) and the same step in
            PyTorch (tools/bench/torch_step.py: eager, torch.compile, ...) alternately for
            --rounds rounds and prints min / median / max and per-round ratios. PyTorch comes
            from --torch-python (default: $FFREPRO_TORCH_PYTHON, else .venv-torch/bin/python,
            else python3); torch.compile compiles in every round (about a minute each).
            """)

    @Argument(help: "What to measure.")
    var targets: [String] = []

    @Option(parsing: .unconditional, help: "Timed steps per model measurement.")
    var steps = 3

    @Option(parsing: .unconditional, help: "Batch size override.")
    var batchSize: Int?

    @Option(parsing: .unconditional, help: "Gradient accumulation for a single recipe target, or K for `audit`.")
    var accumulate: Int?

    @Option(help: "Rounds of the `covariance` comparison and of --compare-torch (min / median / max over them).")
    var rounds = 5

    @Option(help: "Convolution precision: fp32 or bf16 (default: the recipe's). With --compare-torch a comma list.")
    var precision: String?

    @Option(help: "Convolution algorithm: auto, measure, im2col, f2, f4, f6 (default: auto or $FFREPRO_CONV_ALGO).")
    var convAlgo: String?

    @Flag(help: "Compare with the same step in PyTorch (see below).")
    var compareTorch = false

    @Option(help: "Python with torch for --compare-torch.")
    var torchPython: String?

    @Option(help: "The PyTorch side of --compare-torch (default: tools/bench/torch_step.py).")
    var torchScript: String?

    @Option(help: "PyTorch variants for --compare-torch, comma-separated: eager, compile, compile+cl (channels_last).")
    var torchModes = "eager,compile"

    @Option(help: "Channels of the `covariance` comparison.")
    var channels = 512

    @Option(help: "Map sizes (height = width) of the `covariance` comparison, comma-separated.")
    var sizes = "8,16"

    @Option(help: "Recipe for `audit` and `scaling`.")
    var recipe = "dtgff-cifar100"

    @Option(help: "Alternating repetitions of each `scaling` measurement (min/median/max).")
    var repeats = 1

    @Option(name: .customLong("set"), parsing: .singleValue,
            help: "A config field of a single recipe target, as key=value (see `repro run --set`). Repeatable.")
    var sets: [String] = []

    @Flag(help: ArgumentHelp("Measure in this process and print one JSON line (used for child processes).",
                             visibility: .private))
    var json = false

    @OptionGroup var threading: ThreadOptions

    func validate() throws {
        guard (1...1000).contains(steps) else { throw ValidationError("--steps \(steps) is outside 1...1000.") }
        if let b = batchSize, !(1...65536).contains(b) { throw ValidationError("--batch-size \(b) is outside 1...65536.") }
        if let a = accumulate, a < 1 { throw ValidationError("--accumulate \(a) must be at least 1.") }
        if json && targets.count != 1 { throw ValidationError("--json measures exactly one target (got \(targets.count)).") }
    }

    func run() throws {
        try Repro.guarded {
            if json, let t = targets.first, BenchCommand.scalingWorkers.contains(t) { return try scalingWorker(t) }
            if json {
                let r = try measure(targets[0], accumulate: accumulate, settings: sets)
                print(String(decoding: try JSONEncoder().encode(r), as: UTF8.self))
                return
            }
            let ctx = threading.context()
            if let a = convAlgo { try ctx.setConvAlgorithm(a) }
            if !compareTorch, let p = precision { try ctx.setPrecision(p) }
            print("ffrepro bench: \(ctx.threads) thread\(ctx.threads == 1 ? "" : "s"), SIMD \(ctx.simdName), conv precision \(ctx.precision), "
                  + "algorithm \(ctx.convAlgorithm)")
            if compareTorch {
                try compareWithTorch(ctx)
                return
            }
            var models: [ModelBenchResult] = []
            for t in targets.isEmpty ? ["kernels", "asge-vgg8"] : targets {
                switch t {
                case "kernels":
                    print(KernelBench.format(KernelBench.run(context: ctx, seconds: 2)))
                    print("")
                    print(KernelBench.format(KernelBench.convAlgorithms(context: ctx), precision: ctx.precision))
                    print("Effective GFLOP/s = direct-convolution FLOPs / time (Winograd does fewer multiplications);"
                          + " auto = the algorithm the default rule picks at this precision.")
                case "covariance":
                    print(CovarianceBench.format(try covariance(ctx)))
                case "scaling":
                    try scaling()
                case "audit":
                    for entry in try Recipes.auditPlan(recipe, accumulate: accumulate ?? 4) {
                        models.append(try child(entry.recipe, accumulate: entry.accumulate, settings: entry.settings))
                    }
                default:
                    models.append(try child(t, accumulate: accumulate, settings: sets))
                }
            }
            if !models.isEmpty {
                // One table at the end (aligned over all rows); progress went to stderr.
                print("")
                print(ModelBench.format(models))
                print("RSS = peak resident set size of the training phase (child process); engine = high-water mark"
                      + " of tensor allocations; GFLOP/s counts the conv layers as direct convolutions (layer-local:"
                      + " forward + weight gradient; backprop: + input gradient), an effective rate where Winograd"
                      + " does fewer multiplications.")
            }
        }
    }

    func covariance(_ ctx: ComputeContext) throws -> CovarianceBench.Result {
        let hw = sizes.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) ?? 0 }
        guard !hw.isEmpty, hw.allSatisfy({ $0 >= 1 }), channels >= 1, rounds >= 1 else {
            throw FFError("bench covariance: --sizes must list map sizes >= 1 (e.g. 8,16), --channels and --rounds must be >= 1.")
        }
        return CovarianceBench.run(context: ctx, rounds: rounds, channels: channels, sizes: hw)
    }

    /// Runs `repro bench TARGET --json` in a child process (clean peak RSS).
    func child(_ target: String, accumulate: Int?, settings: [String] = [], precision: String? = nil) throws -> ModelBenchResult {
        let label = AuditEntry(recipe: target, settings: settings, accumulate: accumulate).label
        FileHandle.standardError.write(Data("measuring \(label)...\n".utf8))
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var args = ["bench", target, "--json", "--steps", String(steps)]
        if let b = batchSize { args += ["--batch-size", String(b)] }
        if let a = accumulate { args += ["--accumulate", String(a)] }
        if let t = threading.threads { args += ["--threads", String(t)] }
        if let p = precision ?? self.precision { args += ["--precision", p] }
        if let a = convAlgo { args += ["--conv-algo", a] }
        for s in settings { args += ["--set", s] }
        let p = Process()
        p.executableURL = exe
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0, let line = String(decoding: data, as: UTF8.self).split(separator: "\n").last else {
            throw FFError("benchmark of \(target) failed (exit \(p.terminationStatus)).")
        }
        return try JSONDecoder().decode(ModelBenchResult.self, from: Data(line.utf8))
    }

    func measure(_ target: String, accumulate: Int?, settings: [String]) throws -> ModelBenchResult {
        let ctx = threading.context()
        var config = try Recipes.named(target == "asge-vgg8" ? "asge-cifar100" : target)
        for s in settings { config = try config.setting(s) }
        if let b = batchSize { config.batchSize = b }
        if let a = accumulate { config.accumulate = a }
        if let p = precision { config.precision = p }
        try config.validate()
        try ctx.setPrecision(config.precision)
        if let a = convAlgo { try ctx.setConvAlgorithm(a) }
        let (shape, classes) = try BenchCommand.inputGeometry(config)
        let label = AuditEntry(recipe: target, settings: settings, accumulate: config.accumulate).label
        return try ModelBench.run(ctx, config: config, inputShape: shape, classes: classes, steps: steps, label: label)
    }

    /// Input shape and class count of a recipe's dataset (no data needed).
    static func inputGeometry(_ c: RecipeConfig) throws -> ([Int], Int) {
        let e = try DatasetCatalog.entry(c.dataset)
        let size = c.inputSize ?? e.imageSize[0]
        let classes = c.labels == "coarse_labels" ? 20 : e.classCount
        return ([e.imageSize[2], size, size], classes)
    }
}

extension BenchCommand {
    /// --compare-torch: ffrepro children and torch_step.py alternately, `rounds` times (the
    /// order flips every round, so neither side always runs right after the other).
    func compareWithTorch(_ ctx: ComputeContext) throws {
        let python = try torchInterpreter()
        let script = try torchStepScript()
        var precisions: [String] = []
        for p in (precision ?? "fp32").split(separator: ",").map(String.init) {
            do {
                try ComputeContext(threads: 1).setPrecision(p)
                precisions.append(p)
            } catch let e as FFError {
                print("skipping ffrepro \(p): \(e.message)")
            }
        }
        if precisions.isEmpty { throw FFError("--compare-torch: no usable --precision (fp32, bf16).") }
        let modes = torchModes.split(separator: ",").map(String.init)
        for m in modes where !["eager", "compile", "compile+cl", "eager+cl"].contains(m) {
            throw FFError("--torch-modes: '\(m)' is not one of eager, compile, compile+cl, eager+cl.")
        }
        let targets = targets.isEmpty ? ["asge-vgg8"] : targets
        var samples: [TorchComparison.Sample] = []
        for round in 1...max(1, rounds) {
            for t in targets {
                var config = try Recipes.named(t == "asge-vgg8" ? "asge-cifar100" : t)
                if let b = batchSize { config.batchSize = b }
                var runs: [() throws -> TorchComparison.Sample] = precisions.map { p in
                    { TorchComparison.Sample(target: t, system: "ffrepro \(p)", round: round,
                                             try child(t, accumulate: nil, precision: p)) }
                }
                runs += modes.map { m in
                    { TorchComparison.Sample(target: t, system: "torch \(m)", round: round,
                                             try torchChild(python, script, config, mode: m, threads: ctx.threads)) }
                }
                if round % 2 == 0 { runs.reverse() }
                for r in runs {
                    let s = try r()
                    samples.append(s)
                    let f = { (x: Double?) in x.map { String(format: "%.1f", $0) } ?? "-" }
                    print("round \(round) \(t) \(s.system): train \(f(s.train)) im/s, infer \(f(s.infer)) im/s")
                    fflush(stdout)
                }
            }
        }
        print("")
        print(TorchComparison.format(samples))
    }

    /// The interpreter for torch_step.py; fails with the venv recipe when torch is missing.
    func torchInterpreter() throws -> String {
        let env = ProcessInfo.processInfo.environment
        let candidates = [torchPython, env["FFREPRO_TORCH_PYTHON"],
                          FileManager.default.isExecutableFile(atPath: ".venv-torch/bin/python") ? ".venv-torch/bin/python" : nil,
                          "python3"].compactMap { $0 }
        let python = candidates[0]
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [python, "-c", "import torch"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        do { try p.run(); p.waitUntilExit() } catch {}
        guard p.terminationStatus == 0 else {
            throw FFError("--compare-torch: \(python) cannot import torch. Create a venv with it once:\n"
                + "  python3 -m venv .venv-torch\n"
                + "  .venv-torch/bin/pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 numpy\n"
                + "then rerun (or pass --torch-python PATH, or set FFREPRO_TORCH_PYTHON).")
        }
        return python
    }

    /// tools/bench/torch_step.py under the current directory or above the executable.
    func torchStepScript() throws -> String {
        if let s = torchScript { return s }
        let rel = "tools/bench/torch_step.py"
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var dirs = [URL(fileURLWithPath: FileManager.default.currentDirectoryPath)]
        var d = exe.deletingLastPathComponent()
        for _ in 0..<4 { dirs.append(d); d = d.deletingLastPathComponent() }
        for dir in dirs where FileManager.default.fileExists(atPath: dir.appendingPathComponent(rel).path) {
            return dir.appendingPathComponent(rel).path
        }
        throw FFError("--compare-torch: \(rel) not found from the current directory or the repro binary; "
            + "run from the repository root or pass --torch-script PATH.")
    }

    /// torch_step.py with the recipe's resolved config on stdin.
    func torchChild(_ python: String, _ script: String, _ config: RecipeConfig, mode: String,
                    threads: Int) throws -> TorchComparison.TorchResult {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        var args = [python, script, "--config", "-", "--mode", mode.hasPrefix("compile") ? "compile" : "eager",
                    "--threads", String(threads), "--steps", String(steps)]
        if mode.hasSuffix("+cl") { args.append("--channels-last") }
        p.arguments = args
        // stderr (torch.compile is chatty) goes to a file, so no pipe can fill up and block.
        let errURL = FileManager.default.temporaryDirectory.appendingPathComponent("repro-torch-\(getpid()).log")
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: errURL) }
        let input = Pipe(), out = Pipe()
        p.standardInput = input
        p.standardOutput = out
        p.standardError = try FileHandle(forWritingTo: errURL)
        try p.run()
        input.fileHandleForWriting.write(Data(config.json().utf8))
        try input.fileHandleForWriting.close()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let errText = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
        guard p.terminationStatus == 0,
              let line = String(decoding: data, as: UTF8.self).split(separator: "\n").last(where: { $0.hasPrefix("{") }) else {
            let tail = errText.split(separator: "\n").suffix(5).joined(separator: "\n")
            throw FFError("torch_step.py (\(config.name), \(mode)) failed with exit \(p.terminationStatus):\n\(tail)")
        }
        return try TorchComparison.decodeTorch(String(line))
    }
}
