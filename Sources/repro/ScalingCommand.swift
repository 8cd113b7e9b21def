import FFEngine
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `repro bench scaling`: one process, then 2 ranks data-parallel and 2 ranks pipelined
/// (each rank 1 thread unless --threads), measured in child processes, alternating when
/// --repeats > 1; then the projection to 8 and 64 nodes (ScalingModel).
extension BenchCommand {
    static let scalingWorkers = ["scaling-single", "scaling-data", "scaling-pipeline"]

    func scalingConfig() throws -> (RecipeConfig, [Int], Int) {
        var config = try Recipes.named(recipe)
        if let b = batchSize { config.batchSize = b }
        if let a = accumulate { config.accumulate = a }
        try config.validate()
        let (shape, classes) = try BenchCommand.inputGeometry(config)
        return (config, shape, classes)
    }

    /// In a child process (under mpirun for the 2-rank layouts): one measurement, printed
    /// as JSON by rank 0.
    func scalingWorker(_ target: String) throws {
        let (config, shape, classes) = try scalingConfig()
        let ctx = ComputeContext(threads: threading.threads ?? 1)
        var parallel: ParallelTraining?
        if target != "scaling-single" {
            let world = try MPIWorld.start()
            parallel = try ParallelTraining(world: world, mode: target == "scaling-pipeline" ? .pipeline : .data)
        }
        let r = try ScalingBench.measure(ctx, config: config, inputShape: shape, classes: classes, steps: steps,
                                         parallel: parallel)
        if parallel?.isRoot ?? true { print(String(decoding: try JSONEncoder().encode(r), as: UTF8.self)) }
        fflush(stdout)
        parallel?.world.finalize()
    }

    func scaling() throws {
        let (config, _, _) = try scalingConfig()
        let threads = threading.threads ?? 1
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        guard let mpirun = path.split(separator: ":").map({ "\($0)/mpirun" })
            .first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw FFError(.missing, "bench scaling needs mpirun (package openmpi-bin; `make setup` installs it).")
        }
        print("scaling of \(config.name): batch \(config.batchSize), \(steps) timed steps after 1 warm-up, "
              + "\(threads) thread\(threads == 1 ? "" : "s") per rank, \(repeats) alternating repeat(s)")
        var runs: [String: [ScalingResult]] = [:]
        for _ in 0..<max(1, repeats) {
            for w in BenchCommand.scalingWorkers {
                var args = ["bench", w, "--json", "--recipe", recipe, "--steps", String(steps), "--threads", String(threads)]
                if let b = batchSize { args += ["--batch-size", String(b)] }
                if let a = accumulate { args += ["--accumulate", String(a)] }
                let command = w == "scaling-single" ? [exe] + args
                    : [mpirun] + (getuid() == 0 ? ["--allow-run-as-root"] : []) + ["--oversubscribe", "--bind-to", "none", "-np", "2", exe] + args
                let r = try runChild(command)
                runs[w, default: []].append(r)
                print("  \(r.mode), \(r.ranks) rank(s): \(String(format: "%.2f", r.imagesPerSecond)) images/s")
            }
        }
        print("")
        for w in BenchCommand.scalingWorkers { if let l = runs[w]?.first?.layout, !l.isEmpty { print("\(w): \(l)") } }
        print(scalingTable(runs))
        if let model = runs["scaling-single"]?.first?.model { print(""); print(projectionTable(model)) }
    }

    private func runChild(_ command: [String]) throws -> ScalingResult {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: command[0])
        p.arguments = Array(command.dropFirst())
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0,
              let line = String(decoding: data, as: UTF8.self).split(separator: "\n").last(where: { $0.hasPrefix("{") }) else {
            throw FFError("scaling measurement `\(command.joined(separator: " "))` failed (exit \(p.terminationStatus)).")
        }
        return try JSONDecoder().decode(ScalingResult.self, from: Data(line.utf8))
    }

    private static func bytes(_ b: Double) -> String {
        b >= 1_048_576 ? String(format: "%.2f MiB", b / 1_048_576) : b >= 1024 ? String(format: "%.1f KiB", b / 1024)
            : String(format: "%.0f B", b)
    }

    private func scalingTable(_ runs: [String: [ScalingResult]]) -> String {
        func median(_ x: [Double]) -> Double { x.sorted()[x.count / 2] }
        let base = median(runs["scaling-single"]!.map(\.imagesPerSecond))
        var rows = [["mode", "ranks", "layout", "images/s (min/median/max)", "speedup", "efficiency", "sent/step (busiest rank)",
                     "waiting s/step"]]
        for w in BenchCommand.scalingWorkers {
            guard let rs = runs[w], let r = rs.first else { continue }
            let ips = rs.map(\.imagesPerSecond)
            let m = median(ips)
            rows.append([r.mode, String(r.ranks), r.ranks == 1 ? "-" : "\(r.stages) stage(s) x \(r.replicas) replica(s)",
                         String(format: "%.2f / %.2f / %.2f", ips.min()!, m, ips.max()!),
                         String(format: "%.2f", m / base), String(format: "%.0f%%", 100 * m / base / Double(r.ranks)),
                         BenchCommand.bytes(median(rs.map(\.bytesSentPerStep))),
                         String(format: "%.3f", median(rs.map(\.waitSecondsPerStep)))])
        }
        return TextTable.render(rows, rightAligned: [1, 3, 4, 5, 6, 7]) + "\n"
            + "efficiency = images/s / (ranks x 1-process images/s); sent/step counts point-to-point bytes and, for "
            + "MPI's allreduce, what a ring allreduce sends (2 (D-1)/D of the gradients); waiting = time blocked "
            + "on other ranks (the rank that waited most)."
    }

    private func projectionTable(_ m: ScalingModel) -> String {
        let single = m.singleNodeImagesPerSecond
        var rows = [["nodes", "link", "data parallel im/s", "eff.", "best pipeline (S x D)", "im/s", "eff.", "sent/step/node"]]
        for nodes in [8, 64] {
            for link in ScalingModel.links {
                let data = m.project(nodes: nodes, stages: 1, link: link)
                let pipes = m.layouts(nodes: nodes).dropFirst().map { m.project(nodes: nodes, stages: $0, link: link) }
                let best = pipes.max { $0.imagesPerSecond < $1.imagesPerSecond }
                func eff(_ p: ScalingModel.Projection) -> String {
                    String(format: "%.0f%%", 100 * p.imagesPerSecond / (single * Double(nodes)))
                }
                rows.append([String(nodes), link.name, String(format: "%.1f", data.imagesPerSecond), eff(data),
                             best.map { "\($0.stages) x \(nodes / $0.stages)" } ?? "-",
                             best.map { String(format: "%.1f", $0.imagesPerSecond) } ?? "-", best.map(eff) ?? "-",
                             BenchCommand.bytes(max(data.bytesPerStep, best?.bytesPerStep ?? 0))])
            }
        }
        let blocks = m.blockSeconds.map { String(format: "%.3f", $0) }.joined(separator: " ")
        return "projection (a model, not a measurement; a node computes like the 1-process run above):\n"
            + TextTable.render(rows, rightAligned: [0, 2, 3, 5, 6, 7]) + "\n"
            + "inputs: per-block seconds per step [\(blocks)], head \(String(format: "%.3f", m.headSeconds)) s, "
            + "optimizer and rest \(String(format: "%.3f", m.otherSeconds)) s, batch \(m.batch); gradients "
            + BenchCommand.bytes(Double(m.blockParameterBytes.reduce(0, +) + m.headParameterBytes)) + "; links: "
            + ScalingModel.links.map { "\($0.name) with \(Int($0.latency * 1e6)) us per message" }.joined(separator: ", ")
    }
}
