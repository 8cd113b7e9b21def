import ArgumentParser
import FFEngine
import Foundation

/// Options of a run started by an MPI launcher (`mpirun -np K repro run ...`, `srun`).
/// A process that was not started by one trains alone and never loads MPI.
struct ParallelOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Training under mpirun/srun: data (default: every rank trains every block on its part of "
        + "each batch) or pipeline (each rank trains a contiguous range of blocks). Evaluation always splits the images "
        + "across the ranks.", valueName: "mode"))
    var parallel: String?

    @Option(help: "Pipeline stages (default: one per rank); the ranks of a stage split its batches (data parallel).")
    var stages: Int?

    @Option(help: ArgumentHelp("Gradient sum over data-parallel ranks: mpi (MPI's allreduce) or ordered (a fixed "
        + "order: the same bits on every run)."))
    var reduce = "mpi"

    @Option(help: "Seconds one rank waits for another before it stops the job.")
    var mpiTimeout: Double = 600

    /// The job's ranks, or nil for a single process (no MPI).
    func start() throws -> ParallelTraining? {
        let mode = try parallel.map { v -> ParallelLayout.Mode in
            guard let m = ParallelLayout.Mode(rawValue: v) else {
                throw FFError(.invalidArgument, "--parallel \(v): choose data or pipeline.")
            }
            return m
        }
        // Checked with or without MPI: a bad value must not wait for the day it is used.
        guard mpiTimeout.isFinite, mpiTimeout > 0 else {
            throw FFError(.invalidArgument, "--mpi-timeout \(mpiTimeout) must be a positive number of seconds.")
        }
        guard MPIWorld.launched else {
            if mode != nil || stages != nil {
                FileHandle.standardError.write(Data(("note: --parallel/--stages apply to runs started by mpirun or "
                    + "srun; this single process trains everything itself.\n").utf8))
            }
            return nil
        }
        let world = try MPIWorld.start()
        world.timeout = mpiTimeout
        return try ParallelTraining(world: world, mode: mode ?? .data, stages: stages, order: reduce)
    }

    /// Runs `body` on this rank. Under MPI an error on any rank stops the whole job (MPI_Abort,
    /// after the rank's message), so no rank waits forever for one that gave up.
    static func guarded(_ parallel: ParallelTraining?, _ body: () throws -> Void) throws {
        guard let parallel, parallel.world.size > 1 else {
            defer { parallel?.world.finalize() }
            return try Repro.guarded(body)
        }
        let rank = parallel.world.rank
        do {
            try body()
        } catch {
            let text: String
            switch error {
            case let e as RankFailure: text = "error: \(e.description)"
            case let e as NonFiniteLoss: text = "error: rank \(rank): \(e.description)"
            case let e as FFError: text = "error: rank \(rank): \(e.message)"
            default: text = "error: rank \(rank): \(error)"
            }
            FileHandle.standardError.write(Data((text + "\n").utf8))
            parallel.world.abort(error is NonFiniteLoss ? 2 : 1)
        }
        parallel.world.finalize()
    }
}
