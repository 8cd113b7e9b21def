import Foundation

/// Sums each block's gradients over the data-parallel replicas of a stage. A block's
/// reduction starts as soon as its backward is done, so it overlaps the next block's
/// forward and backward, and is finished just before the block's optimizer step.
///
/// - `mpi`: MPI's non-blocking allreduce (its algorithm, its summation order);
/// - `ordered`: the same sum in a fixed order, independent of MPI: replica j adds part j of
///   the buffer as ((g_0 + g_1) + g_2) + ... in replica order, then every replica gathers
///   the parts (point-to-point; the bytes of a ring allreduce). Every rank and every run with
///   the same replica count get the same bits.
final class GradientReducer {
    enum Order: String, CaseIterable {
        case mpi, ordered
    }

    let world: MPIWorld
    let comm: Comm
    let order: Order
    private var flats: [Int: Tensor] = [:]
    private var staging: [Int: Tensor] = [:]
    private var inflight: [Int: Reduction] = [:]

    private final class Reduction {
        var pending: [Pending]
        var phase: Int
        init(_ pending: [Pending], phase: Int) {
            self.pending = pending
            self.phase = phase
        }
    }

    init(world: MPIWorld, comm: Comm, order: Order) {
        self.world = world
        self.comm = comm
        self.order = order
    }

    private func flat(_ g: Int, _ params: [Parameter]) -> Tensor {
        if let f = flats[g] { return f }
        let f = Tensor(zeros: [params.reduce(0) { $0 + $1.grad.count }])
        flats[g] = f
        return f
    }

    /// Part j of a buffer of n values.
    private func segment(_ j: Int, of n: Int) -> Range<Int> { (j * n / comm.size)..<((j + 1) * n / comm.size) }

    private func tag(_ g: Int, phase: Int) -> Int32 { Int32(1000 + 2 * g + phase) }

    /// Starts the sum of group `g`'s gradients (block index; the blocks' count: the head).
    func start(_ g: Int, _ params: [Parameter]) throws {
        precondition(inflight[g] == nil, "gradient reduction of group \(g) started twice in one step")
        let f = flat(g, params)
        var offset = 0
        for p in params {
            (f.pointer + offset).update(from: p.grad.pointer, count: p.grad.count)
            offset += p.grad.count
        }
        let what = "the summed gradients of block \(g + 1) (step \(world.stepLabel))"
        switch order {
        case .mpi:
            inflight[g] = Reduction(try comm.allreduceSum(f.pointer, count: f.count, what: what, keep: f, in: world), phase: 1)
        case .ordered:
            let n = f.count
            let mine = segment(comm.rank, of: n)
            let stage = staging[g] ?? Tensor(zeros: [mine.count * comm.size])
            staging[g] = stage
            var pending: [Pending] = []
            for j in 0..<comm.size where j != comm.rank {
                let seg = segment(j, of: n)
                pending += try comm.send(f.pointer + seg.lowerBound, bytes: seg.count * 4, to: j, tag: tag(g, phase: 0),
                                         what: what, keep: f, in: world)
                pending += try comm.receive(stage.pointer + j * mine.count, bytes: mine.count * 4, from: j,
                                            tag: tag(g, phase: 0), what: what, keep: stage, in: world)
            }
            inflight[g] = Reduction(pending, phase: 0)
        }
        try progress()
    }

    /// Advances every reduction in flight (MPI progresses transfers only inside its calls).
    func progress() throws {
        for (g, r) in inflight where r.phase == 0 {
            if try world.test(r.pending) { try finishPhase0(g, r) }
        }
        for (_, r) in inflight where r.phase == 1 { _ = try world.test(r.pending) }
    }

    /// The fixed-order sum of this replica's part, then its exchange with every replica.
    private func finishPhase0(_ g: Int, _ r: Reduction) throws {
        let f = flats[g]!, stage = staging[g]!
        let n = f.count
        let mine = segment(comm.rank, of: n)
        let own = f.pointer + mine.lowerBound
        let len = mine.count
        if len > 0 {
            // acc = contribution of replica 0, then + replica 1, + replica 2, ...
            let acc = [Float](unsafeUninitializedCapacity: len) { buf, count in
                let first = comm.rank == 0 ? own : stage.pointer
                for i in 0..<len { buf[i] = first[i] }
                for j in 1..<comm.size {
                    let src = j == comm.rank ? own : stage.pointer + j * len
                    for i in 0..<len { buf[i] += src[i] }
                }
                count = len
            }
            acc.withUnsafeBufferPointer { own.update(from: $0.baseAddress!, count: len) }
        }
        let what = "the summed gradients of block \(g + 1) (step \(world.stepLabel))"
        var pending: [Pending] = []
        for j in 0..<comm.size where j != comm.rank {
            let seg = segment(j, of: n)
            pending += try comm.send(own, bytes: len * 4, to: j, tag: tag(g, phase: 1), what: what, keep: f, in: world)
            pending += try comm.receive(f.pointer + seg.lowerBound, bytes: seg.count * 4, from: j, tag: tag(g, phase: 1),
                                        what: what, keep: f, in: world)
        }
        r.pending = pending
        r.phase = 1
    }

    /// Waits for group `g`'s sum and writes it into the parameters' gradients.
    func finish(_ g: Int, _ params: [Parameter]) throws {
        guard let r = inflight[g] else { preconditionFailure("gradient reduction of group \(g) was never started") }
        if r.phase == 0 {
            try world.wait(r.pending)
            try finishPhase0(g, r)
        }
        try world.wait(r.pending)
        inflight[g] = nil
        let f = flats[g]!
        var offset = 0
        for p in params {
            p.grad.pointer.update(from: f.pointer + offset, count: p.grad.count)
            offset += p.grad.count
        }
    }
}
