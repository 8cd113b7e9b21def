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
                           goodness (GFLOP/s), then the covariance comparison below
              covariance   BiCovG projection path vs explicit covariance vs the conv step
                           (batch 128, K 64; --channels, default 512; --sizes, default
                           8,16; --rounds, default 5)
              asge-vgg8    ASGE VGG8 step, 32x32x3, 100 classes, batch 128 (= asge-cifar100)
              audit        systems audit of a DTG-FF recipe (--recipe, default dtgff-cifar100):
                           DTG-FF and BP-DeepSup at the same batch, and BP-DeepSup with
                           gradient accumulation (--accumulate K, micro-batch = batch / K)
              <recipe>     any recipe, on synthetic data of its input shape
            Without a target: kernels and asge-vgg8. Each model is measured in a fresh child
            process, so its peak RSS is its own.
            """)

    @Argument(help: "What to measure.")
    var targets: [String] = []

    @Option(help: "Timed steps per model measurement.")
    var steps = 3

    @Option(help: "Batch size override.")
    var batchSize: Int?

    @Option(help: "Gradient accumulation for a single recipe target, or K for `audit`.")
    var accumulate: Int?

    @Option(help: "Rounds of the `covariance` comparison (min / median / max over them).")
    var rounds = 5

    @Option(help: "Channels of the `covariance` comparison.")
    var channels = 512

    @Option(help: "Map sizes (height = width) of the `covariance` comparison, comma-separated.")
    var sizes = "8,16"

    @Option(help: "Recipe for `audit`.")
    var recipe = "dtgff-cifar100"

    @Flag(help: "Measure in this process and print one JSON line (used for child processes).")
    var json = false

    @OptionGroup var threading: ThreadOptions

    func run() throws {
        try Repro.guarded {
            if json {
                precondition(targets.count == 1, "--json measures exactly one target")
                let r = try measure(targets[0], accumulate: accumulate)
                print(String(decoding: try JSONEncoder().encode(r), as: UTF8.self))
                return
            }
            let ctx = threading.context()
            print("ffrepro bench: \(ctx.threads) threads, SIMD \(ctx.simdName)")
            var models: [ModelBenchResult] = []
            for t in targets.isEmpty ? ["kernels", "asge-vgg8"] : targets {
                switch t {
                case "kernels":
                    print(KernelBench.format(KernelBench.run(context: ctx, seconds: 2)))
                    print("")
                    print(CovarianceBench.format(try covariance(ctx)))
                case "covariance":
                    print(CovarianceBench.format(try covariance(ctx)))
                case "audit":
                    let k = accumulate ?? 4
                    let bp = recipe.replacingOccurrences(of: "dtgff-", with: "bpds-")
                    for (name, acc) in [(recipe, 1), (bp, 1), (bp, k)] {
                        models.append(try child(name, accumulate: acc))
                        print(ModelBench.format([models.last!]).split(separator: "\n").last!)
                    }
                default:
                    models.append(try child(t, accumulate: accumulate))
                    print(ModelBench.format([models.last!]).split(separator: "\n").last!)
                }
            }
            if !models.isEmpty {
                print("")
                print(ModelBench.format(models))
                print("RSS = peak resident set size of the training phase (child process); engine = high-water mark"
                      + " of tensor allocations; GFLOP/s counts the conv layers (layer-local: forward + weight"
                      + " gradient; backprop: + input gradient).")
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
    func child(_ target: String, accumulate: Int?) throws -> ModelBenchResult {
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var args = ["bench", target, "--json", "--steps", String(steps)]
        if let b = batchSize { args += ["--batch-size", String(b)] }
        if let a = accumulate { args += ["--accumulate", String(a)] }
        if let t = threading.threads { args += ["--threads", String(t)] }
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

    func measure(_ target: String, accumulate: Int?) throws -> ModelBenchResult {
        let ctx = threading.context()
        var config = try Recipes.named(target == "asge-vgg8" ? "asge-cifar100" : target)
        if let b = batchSize { config.batchSize = b }
        if let a = accumulate { config.accumulate = a }
        try config.validate()
        let (shape, classes) = try BenchCommand.inputGeometry(config)
        let label = config.accumulate > 1 ? "\(target) (accumulate \(config.accumulate))" : target
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
