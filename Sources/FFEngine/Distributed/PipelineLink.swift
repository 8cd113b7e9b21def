import Foundation

/// The messages between pipeline stages (world communicator, one replica column d):
/// - a step header from stage s to s + 1: [global count, micro-batches, their sizes, their
///   labels] (Int32; global count -1 ends the epoch);
/// - per micro-batch, the detached output of stage s's last block to stage s + 1;
/// - per micro-batch, the head's GAP features of stage s's units and (pred = goodness-*)
///   its readouts' scores to the last stage, which trains the head.
/// Sends are non-blocking, so a stage starts its next micro-batch (and its next step: there
/// is no backward pass between stages) while the transfer runs; at most two steps of sends
/// are in flight. Receives for the next micro-batch are posted before the current one is
/// computed.
final class PipelineLink {
    let world: MPIWorld
    let net: Network
    let layout: ParallelLayout
    let stage: Int
    let replica: Int
    let accumulate: Int
    /// The largest micro-batch (of the recipe's full batch).
    let maxMicro: Int

    struct Header {
        var globalCount: Int
        var sizes: [Int]
        var labels: [[Int32]]
        var micros: Int { sizes.count }
    }

    private var sentSteps: [[Pending]] = []
    private var stepSends: [Pending] = []
    private var nextHeader: (Bytes, [Pending])?
    private var current: Header?
    private var micro = 0
    private var inputs: [Int: (Tensor, [Pending])] = [:]
    private var featureParts: [Int: [(Int, Bytes, [Pending])]] = [:]

    static let headerTag: Int32 = 1, activationTag: Int32 = 2, featureTag: Int32 = 16

    init(world: MPIWorld, net: Network, layout: ParallelLayout, accumulate: Int) {
        self.world = world
        self.net = net
        self.layout = layout
        stage = layout.stage(ofRank: world.rank)
        replica = layout.replica(ofRank: world.rank)
        self.accumulate = max(1, accumulate)
        maxMicro = ParallelLayout.share(count: net.config.batchSize, replicas: layout.replicas, replica: 0,
                                        accumulate: accumulate).micro
    }

    var isLast: Bool { stage == layout.stages - 1 }
    private var next: Int { layout.rank(stage: stage + 1, replica: replica) }
    private var previous: Int { layout.rank(stage: stage - 1, replica: replica) }
    private var headerBytes: Int { 4 * (2 + accumulate + accumulate * maxMicro) }

    /// Per-sample shape of what stage s receives.
    private func inputShape(_ s: Int) -> [Int] { net.blocks[layout.stageBlocks[s].lowerBound - 1].outputShape }

    /// What stage s sends the head: (unit, width) of its tapped units, and its readouts.
    private func headParts(_ s: Int) -> (taps: [(Int, Int)], readouts: Int) { stageHeadParts[s] }
    private lazy var stageHeadParts: [(taps: [(Int, Int)], readouts: Int)] = layout.stageBlocks.map { blocks in
        let units = Set(blocks.flatMap { net.blocks[$0].units.map(\.index) })
        var taps: [(Int, Int)] = []
        if let h = net.head, net.headBlock == nil {
            for t in h.taps where units.contains(t) {
                taps.append((t, h.point == .tap ? net.units[t].tapShape[0] : net.units[t].outputShape[0]))
            }
        }
        let readouts = net.config.pred.hasPrefix("goodness-") ? net.readouts.filter { units.contains($0) }.count : 0
        return (taps, readouts)
    }

    private func featureFloats(_ s: Int, count: Int) -> Int {
        let p = headParts(s)
        return count * (p.taps.reduce(0) { $0 + $1.1 } + p.readouts * net.classes)
    }

    // MARK: first stage

    /// Starts a step on the first stage: sends the header (sizes and labels) on.
    func begin(globalCount: Int, sizes: [Int], labels: [[Int32]]) throws {
        try send(Header(globalCount: globalCount, sizes: sizes, labels: labels))
    }

    private func send(_ h: Header) throws {
        while sentSteps.count >= 2 { try world.wait(sentSteps.removeFirst()) }
        sentSteps.append(stepSends)
        stepSends = []
        let b = Bytes(count: headerBytes)
        let p = b.pointer.assumingMemoryBound(to: Int32.self)
        p[0] = Int32(h.globalCount)
        p[1] = Int32(h.micros)
        for (i, n) in h.sizes.enumerated() {
            p[2 + i] = Int32(n)
            for (j, l) in h.labels[i].enumerated() { p[2 + accumulate + i * maxMicro + j] = l }
        }
        stepSends += try world.all.send(b.pointer, bytes: b.count, to: next, tag: PipelineLink.headerTag,
                                          what: "the step header for rank \(next)", keep: b, in: world)
        current = h
        micro = 0
    }

    /// Ends the epoch: the first stage tells the next (which passes it on, see
    /// `receiveHeader`); every stage waits for its sends.
    func endEpoch() throws {
        if stage == 0 { try send(Header(globalCount: -1, sizes: [], labels: [])) }
        for s in sentSteps { try world.wait(s) }
        try world.wait(stepSends)
        sentSteps = []
        stepSends = []
        current = nil
    }

    // MARK: later stages

    private func postHeader() throws {
        let b = Bytes(count: headerBytes)
        let r = try world.all.receive(b.pointer, bytes: b.count, from: previous, tag: PipelineLink.headerTag,
                                        what: "the next step's header from rank \(previous) (pipeline stage \(stage))",
                                        keep: b, in: world)
        nextHeader = (b, r)
    }

    /// The next step's header, or nil when the epoch has ended. Passes it on downstream.
    func receiveHeader() throws -> Header? {
        if nextHeader == nil { try postHeader() }
        let (b, r) = nextHeader!
        try world.wait(r)
        nextHeader = nil
        let p = b.pointer.assumingMemoryBound(to: Int32.self)
        let count = Int(p[0])
        guard count >= 0 else {
            if !isLast { try send(Header(globalCount: -1, sizes: [], labels: [])) }
            return nil
        }
        let micros = Int(p[1])
        let sizes = (0..<micros).map { Int(p[2 + $0]) }
        let labels = sizes.enumerated().map { i, n in (0..<n).map { p[2 + accumulate + i * maxMicro + $0] } }
        let h = Header(globalCount: count, sizes: sizes, labels: labels)
        try postHeader()   // the next one may arrive while this step runs
        if !isLast {
            try send(h)
        } else {
            current = h
            micro = 0
        }
        if micros > 0 { try post(0) }
        return h
    }

    /// Posts the receives of micro-batch i (the stage input, and on the last stage the
    /// earlier stages' head parts).
    private func post(_ i: Int) throws {
        guard let h = current, i < h.micros else { return }
        let n = h.sizes[i]
        let x = Tensor(uninitialized: [n] + inputShape(stage))
        let what = "the activations of micro-batch \(i + 1) of step \(world.stepLabel) from rank \(previous)"
        inputs[i] = (x, try world.all.receive(x.pointer, bytes: x.count * 4, from: previous,
                                                tag: PipelineLink.activationTag, what: what, keep: x, in: world))
        if isLast {
            var parts: [(Int, Bytes, [Pending])] = []
            for s in 0..<stage where featureFloats(s, count: 1) > 0 {
                let b = Bytes(count: 4 * featureFloats(s, count: n))
                let from = layout.rank(stage: s, replica: replica)
                let r = try world.all.receive(b.pointer, bytes: b.count, from: from, tag: PipelineLink.featureTag + Int32(s),
                                                what: "the head features of micro-batch \(i + 1) of step "
                                                    + "\(world.stepLabel) from rank \(from)", keep: b, in: world)
                parts.append((s, b, r))
            }
            featureParts[i] = parts
        }
    }

    /// Micro-batch i of the current step: the previous stage's output and the labels.
    func input(_ i: Int) throws -> Batch {
        guard let h = current else { preconditionFailure("pipeline input without a step header") }
        if inputs[i] == nil { try post(i) }
        let (x, r) = inputs.removeValue(forKey: i)!
        try world.wait(r)
        try post(i + 1)
        return Batch(images: x, labels: h.labels[i])
    }

    // MARK: every stage

    /// After this stage's last block of a micro-batch: sends the output and the head parts
    /// on (returns false), or on the last stage adds the parts the earlier stages sent
    /// (returns true: the head is trained here).
    func passOn(_ x: Tensor, _ batch: Batch, features: inout HeadFeatures, scores: inout [Tensor]) throws -> Bool {
        let i = micro
        micro += 1
        if isLast {
            var received: [Tensor] = []
            for (s, b, r) in featureParts.removeValue(forKey: i) ?? [] {
                try world.wait(r)
                let parts = headParts(s)
                var offset = 0
                for (unit, width) in parts.taps {
                    let t = Tensor(uninitialized: [batch.count, width])
                    t.pointer.update(from: b.floats(offset * 4), count: t.count)
                    features.parts[unit] = t
                    offset += t.count
                }
                for _ in 0..<parts.readouts {
                    let t = Tensor(uninitialized: [batch.count, net.classes])
                    t.pointer.update(from: b.floats(offset * 4), count: t.count)
                    received.append(t)
                    offset += t.count
                }
            }
            scores = received + scores
            return true
        }
        let what = "sending micro-batch \(i + 1) of step \(world.stepLabel) to rank \(next)"
        // The trainer never writes to a block's output after passing it on: no copy.
        stepSends += try world.all.send(x.pointer, bytes: x.count * 4, to: next, tag: PipelineLink.activationTag,
                                        what: what, keep: x, in: world)
        let n = featureFloats(stage, count: batch.count)
        if n > 0 {
            let b = Bytes(count: 4 * n)
            var offset = 0
            let parts = headParts(stage)
            for (unit, _) in parts.taps {
                let t = features.parts[unit]!
                b.floats(offset * 4).update(from: t.pointer, count: t.count)
                offset += t.count
            }
            for t in scores.suffix(parts.readouts) {
                b.floats(offset * 4).update(from: t.pointer, count: t.count)
                offset += t.count
            }
            let head = layout.rank(stage: layout.stages - 1, replica: replica)
            stepSends += try world.all.send(b.pointer, bytes: b.count, to: head, tag: PipelineLink.featureTag + Int32(stage),
                                              what: "head features for rank \(head)", keep: b, in: world)
        }
        _ = try world.test(stepSends)
        return false
    }
}
