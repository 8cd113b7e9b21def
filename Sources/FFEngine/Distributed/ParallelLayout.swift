/// How the K processes of a job share the training: S pipeline stages, each owning a
/// contiguous range of blocks, and D = K / S data-parallel replicas per stage. World rank
/// r is stage r / D, replica r % D, so a stage's replicas are neighbours.
///
/// - data (S = 1): every rank trains every block on its part of each global batch;
/// - pipeline (S = K, or S < K with `--stages`: pipeline of data-parallel stages): blocks are
///   split so that the stages' counted training FLOPs are as even as possible; the
///   detached head lives on the last stage.
public struct ParallelLayout: Equatable, CustomStringConvertible {
    public enum Mode: String, CaseIterable {
        case data, pipeline
    }

    public let ranks: Int
    public let stages: Int
    /// Blocks of each stage.
    public let stageBlocks: [Range<Int>]
    /// Counted multiply-accumulates per image of each stage's training step.
    public let stageCosts: [Int]

    public var replicas: Int { ranks / stages }

    public init(ranks: Int, stages: Int, blockCosts: [Int]) throws {
        guard ranks >= 1, stages >= 1, ranks % stages == 0 else {
            throw FFError(.invalidArgument, "--stages \(stages) does not divide the \(ranks) ranks of the job; "
                + "each pipeline stage needs the same number of data-parallel replicas.")
        }
        guard stages <= blockCosts.count else {
            throw FFError(.invalidArgument, "a pipeline of \(stages) stages needs at least \(stages) blocks; this recipe "
                + "has \(blockCosts.count) (its `blocks` field groups the units). Use fewer stages (--stages), "
                + "--parallel data, or a recipe with more blocks.")
        }
        self.ranks = ranks
        self.stages = stages
        stageBlocks = ParallelLayout.balance(blockCosts, parts: stages)
        stageCosts = stageBlocks.map { blockCosts[$0].reduce(0, +) }
    }

    /// The layout of `mode` for `net` on `ranks` processes (`stages`: pipeline stages, default all ranks).
    public static func make(_ mode: Mode, ranks: Int, stages: Int?, net: Network) throws -> ParallelLayout {
        switch mode {
        case .data:
            if let s = stages, s != 1 {
                throw FFError(.invalidArgument, "--stages \(s) needs --parallel pipeline (data parallelism has one stage).")
            }
            return try ParallelLayout(ranks: ranks, stages: 1, blockCosts: blockCosts(net))
        case .pipeline:
            return try ParallelLayout(ranks: ranks, stages: stages ?? ranks, blockCosts: blockCosts(net))
        }
    }

    public func stage(ofRank r: Int) -> Int { r / replicas }
    public func replica(ofRank r: Int) -> Int { r % replicas }
    public func rank(stage: Int, replica: Int) -> Int { stage * replicas + replica }
    public func stage(ofBlock b: Int) -> Int { stageBlocks.firstIndex { $0.contains(b) }! }

    public var description: String {
        let parts = stageBlocks.enumerated().map { s, r in
            "stage \(s + 1): blocks \(r.lowerBound + 1)-\(r.upperBound) (\(stageCosts[s] / 1000) kMAC/img)"
        }
        return "\(stages) stage\(stages == 1 ? "" : "s") x \(replicas) replica\(replicas == 1 ? "" : "s")"
            + (stages > 1 ? "; " + parts.joined(separator: ", ") : "")
    }

    /// Counted multiply-accumulates per image of each block's training step: forward,
    /// weight gradient and input gradient (none at the block's first layer); the detached
    /// head is counted with the last block, whose stage it lives on.
    public static func blockCosts(_ net: Network) -> [Int] {
        var costs = net.blocks.map { b in 3 * b.units.reduce(0) { $0 + $1.forwardMACs } - b.units[0].inputMACs }
        if let h = net.head, net.headBlock == nil { costs[costs.count - 1] += 3 * h.featureSize * net.classes }
        return costs
    }

    /// Splits `costs` into `parts` contiguous non-empty ranges minimising the largest sum
    /// (the slowest stage sets a pipeline's pace); on ties the later stages get less
    /// (the last one also gathers every stage's head features).
    public static func balance(_ costs: [Int], parts: Int) -> [Range<Int>] {
        let n = costs.count
        precondition(parts >= 1 && parts <= n, "balance: \(parts) parts of \(n)")
        var prefix = [0]
        for c in costs { prefix.append(prefix.last! + c) }
        // best[k][i]: the smallest largest sum splitting the first i costs into k parts.
        let inf = Int.max
        var best = Array(repeating: Array(repeating: inf, count: n + 1), count: parts + 1)
        var cut = Array(repeating: Array(repeating: 0, count: n + 1), count: parts + 1)
        best[0][0] = 0
        for k in 1...parts {
            for i in k...n {
                for j in (k - 1)..<i where best[k - 1][j] != inf {
                    let v = max(best[k - 1][j], prefix[i] - prefix[j])
                    if v <= best[k][i] {
                        best[k][i] = v
                        cut[k][i] = j
                    }
                }
            }
        }
        var ranges: [Range<Int>] = []
        var i = n
        for k in stride(from: parts, through: 1, by: -1) {
            let j = cut[k][i]
            ranges.append(j..<i)
            i = j
        }
        return ranges.reversed()
    }

    /// The rows of a global batch of `count` images that replica `replica` of `replicas`
    /// trains, and its micro-batch size: the micro-batches of the 1-process step with
    /// accumulate = replicas x `accumulate`, `accumulate` consecutive ones per replica. So a
    /// data-parallel step sums exactly the micro-batch gradients of that 1-process step (and
    /// BatchNorm sees the same batches).
    public static func share(count: Int, replicas: Int, replica: Int, accumulate: Int) -> (rows: Range<Int>, micro: Int) {
        let parts = replicas * max(1, accumulate)
        let micro = max(1, (count + parts - 1) / parts)
        let per = micro * max(1, accumulate)
        let lo = min(count, replica * per), hi = min(count, (replica + 1) * per)
        return (lo..<hi, micro)
    }
}
