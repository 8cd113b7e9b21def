import FFMPI
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A distributed job stopped on this rank: a peer failed or did not answer in time, or MPI
/// reported an error. The message names the rank(s) involved and the last good checkpoint.
public struct RankFailure: Error, CustomStringConvertible {
    public let rank: Int
    public let message: String
    public let lastGood: String

    public var description: String { "rank \(rank): \(message) \(lastGood)" }
}

/// The processes of an MPI job and this one's place in it. MPI is loaded and initialised
/// once per process (`start`); every transfer is non-blocking and waited for by polling,
/// so a wait names what it waits for and gives up after `timeout` seconds.
public final class MPIWorld {
    /// Whether this process was started by an MPI launcher (mpirun, mpiexec, srun).
    public static var launched: Bool { ffmpi_launched() != 0 }

    private static var shared: MPIWorld?

    /// Loads Open MPI, initialises it and arms the stop message (see ffmpi.h).
    public static func start() throws -> MPIWorld {
        if let w = shared { return w }
        guard ffmpi_init() == 0 else {
            throw FFError(.invalidArgument, "MPI could not be started: \(String(cString: ffmpi_last_error())).")
        }
        let w = try MPIWorld()
        shared = w
        return w
    }

    public let rank: Int
    public let size: Int
    public let library: String
    /// Host name of every rank (rank order).
    public let hosts: [String]
    public let pids: [Int32]
    /// Seconds a single wait may take before the job is stopped (a rank that neither
    /// answers nor dies).
    public var timeout: TimeInterval = 600
    /// Bytes this process handed to point-to-point sends, and the payload of the
    /// reductions it joined (MPI's algorithm decides what those put on the wire).
    public internal(set) var bytesSent = 0
    public internal(set) var bytesReduced = 0
    /// Seconds spent waiting for transfers (blocked on other ranks or on the network).
    public internal(set) var waitSeconds = 0.0
    /// The training step in progress (for messages).
    public internal(set) var stepLabel = 0
    /// One sentence about the last good checkpoint, for failure messages.
    public private(set) var lastGood = "No checkpoint had been written yet."

    /// All ranks (MPI_COMM_WORLD).
    public let all: Comm

    private init() throws {
        rank = Int(ffmpi_rank(0))
        size = Int(ffmpi_size(0))
        library = String(cString: ffmpi_library_version())
        all = Comm(id: 0, members: Array(0..<size), worldRank: rank)
        // Host names and pids of all ranks: which peers are on this node (stop messages).
        let nameBytes = 64
        var mine = [UInt8](repeating: 0, count: nameBytes + 4)
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, 255)
        let hostName = String(cString: host)
        for (i, b) in hostName.utf8.prefix(nameBytes - 1).enumerated() { mine[i] = b }
        var pid = getpid()
        withUnsafeBytes(of: &pid) { for i in 0..<4 { mine[nameBytes + i] = $0[i] } }
        let gathered = Bytes(count: (nameBytes + 4) * size)
        let send = Bytes(count: nameBytes + 4)
        send.pointer.copyMemory(from: mine, byteCount: nameBytes + 4)
        var hosts: [String] = [], pids: [Int32] = []
        let req = try all.allgather(send, into: gathered, what: "the host names of all ranks", in: nil)
        try MPIWorld.waitAll([req], rank: rank, timeout: 120, lastGood: lastGood)
        for r in 0..<size {
            let base = gathered.pointer + r * (nameBytes + 4)
            let nameData = Data(bytes: base, count: nameBytes)
            hosts.append(String(decoding: nameData.prefix { $0 != 0 }, as: UTF8.self))
            pids.append(base.loadUnaligned(fromByteOffset: nameBytes, as: Int32.self))
        }
        self.hosts = hosts
        self.pids = pids
        let local = (0..<size).filter { $0 != rank && hosts[$0] == hostName }
        let localRanks = local.map { Int32($0) }, localPids = local.map { pids[$0] }
        ffmpi_fault_arm(Int32(rank), Int32(local.count), localRanks, localPids)
        ffmpi_fault_note(lastGood)
    }

    /// Records the last good checkpoint (all ranks learn it when rank 0 confirms a write).
    public func setLastGood(_ sentence: String) {
        lastGood = sentence
        ffmpi_fault_note(sentence)
    }

    /// Files this rank removes if it is stopped (its half-written temporary files).
    public func setTemporaryFiles(_ paths: [String]) {
        ffmpi_fault_temp_files(paths.first, paths.dropFirst().first)
    }

    /// A communicator of the world ranks with the same `color`, ordered by world rank.
    /// Every rank must call it, with the colors of all ranks given by `colorOf`.
    public func split(colorOf: (Int) -> Int) throws -> Comm {
        let color = colorOf(rank)
        let id = ffmpi_comm_split(0, Int32(color), Int32(rank))
        guard id >= 0 else { throw failure("could not create a communicator (MPI_Comm_split failed).") }
        return Comm(id: id, members: (0..<size).filter { colorOf($0) == color }, worldRank: rank)
    }

    public func failure(_ message: String) -> RankFailure {
        RankFailure(rank: rank, message: message, lastGood: lastGood)
    }

    /// Stops every rank of the job (MPI_Abort).
    public func abort(_ code: Int32) -> Never {
        fflush(stdout)
        ffmpi_abort(code)
        exit(code)
    }

    public func finalize() {
        fflush(stdout)
        _ = ffmpi_finalize()
    }

    /// Waits for `requests` (polling, which also progresses every other transfer in flight).
    public func wait(_ requests: [Pending]) throws {
        let start = DispatchTime.now().uptimeNanoseconds
        defer { waitSeconds += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
        try MPIWorld.waitAll(requests, rank: rank, timeout: timeout, lastGood: lastGood)
    }

    /// Progresses MPI and reports whether all `requests` are done (never blocks).
    func test(_ requests: [Pending]) throws -> Bool { try MPIWorld.poll(requests, rank: rank, lastGood: lastGood) }

    static func poll(_ requests: [Pending], rank: Int, lastGood: String) throws -> Bool {
        var all = true
        for p in requests where !p.done {
            var d: Int32 = 0
            let rc = ffmpi_test(&p.request, &d)
            if rc != 0 { throw error(rc, p, rank: rank, lastGood: lastGood) }
            if d != 0 {
                p.done = true
                p.keep = nil
            } else {
                all = false
            }
        }
        return all
    }

    static func waitAll(_ requests: [Pending], rank: Int, timeout: TimeInterval,
                        lastGood: String) throws {
        let start = Date()
        var polls = 0
        while true {
            if try poll(requests, rank: rank, lastGood: lastGood) { return }
            polls += 1
            // Spin briefly (short waits), then poll every 0.2 ms without taking a core.
            if polls < 2000 { sched_yield() } else { usleep(200) }
            if polls % 256 == 0, Date().timeIntervalSince(start) > timeout {
                let open = requests.filter { !$0.done }
                let peers = Set(open.compactMap(\.peer)).sorted()
                let who = peers.isEmpty ? "the other ranks" : peers.map { "rank \($0)" }.joined(separator: ", ")
                throw RankFailure(rank: rank, message: "waited \(Int(timeout)) s for \(open[0].what) without an answer: "
                    + "\(who) stopped responding without dying (a dead rank makes mpirun or srun stop the job). "
                    + "Stopping the job (--mpi-timeout sets this limit).", lastGood: lastGood)
            }
        }
    }

    static func error(_ code: Int32, _ p: Pending, rank: Int, lastGood: String) -> RankFailure {
        var text = [CChar](repeating: 0, count: 512)
        ffmpi_error_text(code, &text, 512)
        let peer = p.peer.map { " Rank \($0) has probably died." } ?? " A rank of the job has probably died."
        return RankFailure(rank: rank, message: "MPI reported an error while waiting for \(p.what): "
            + "\(String(cString: text)).\(peer)", lastGood: lastGood)
    }
}

/// Raw bytes with a stable address for the duration of a non-blocking transfer.
public final class Bytes {
    public let pointer: UnsafeMutableRawPointer
    public let count: Int

    public init(count: Int) {
        self.count = count
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(count, 8), alignment: 64)
        pointer.initializeMemory(as: UInt8.self, repeating: 0, count: max(count, 8))
    }

    deinit { pointer.deallocate() }

    public func floats(_ offset: Int = 0) -> UnsafeMutablePointer<Float> {
        (pointer + offset).assumingMemoryBound(to: Float.self)
    }
}

/// One transfer in flight. `keep` holds its buffer until it completes.
public final class Pending {
    var request = ffmpi_request(handle: nil)
    /// The world rank this transfer depends on (nil for a collective).
    public let peer: Int?
    public let what: String
    var keep: Any?
    public internal(set) var done = false

    init(peer: Int?, what: String, keep: Any?) {
        self.peer = peer
        self.what = what
        self.keep = keep
    }
}

/// A communicator: `members` are the world ranks in communicator-rank order.
public struct Comm {
    public let id: Int32
    public let members: [Int]
    public let rank: Int
    public var size: Int { members.count }

    init(id: Int32, members: [Int], worldRank: Int) {
        self.id = id
        self.members = members
        rank = members.firstIndex(of: worldRank)!
    }

    /// Transfers above this size are split (MPI counts are ints).
    static let chunk = 1 << 30

    private func check(_ rc: Int32, _ what: String, _ world: MPIWorld?) throws {
        guard rc != 0 else { return }
        var text = [CChar](repeating: 0, count: 512)
        ffmpi_error_text(rc, &text, 512)
        let r = world?.rank ?? members[rank]
        throw RankFailure(rank: r, message: "MPI refused to start \(what): \(String(cString: text)).",
                          lastGood: world?.lastGood ?? "")
    }

    /// Sends `bytes` bytes at `pointer` to communicator rank `peer`.
    public func send(_ pointer: UnsafeRawPointer, bytes: Int, to peer: Int, tag: Int32, what: String, keep: Any?,
                     in world: MPIWorld) throws -> [Pending] {
        let out = try chunked(bytes: bytes, peer: peer, what: what, keep: keep, in: world) { offset, n, request in
            ffmpi_isend(id, Int32(peer), tag, pointer + offset, n, request)
        }
        world.bytesSent += bytes
        return out
    }

    public func receive(_ pointer: UnsafeMutableRawPointer, bytes: Int, from peer: Int, tag: Int32, what: String,
                        keep: Any?, in world: MPIWorld) throws -> [Pending] {
        try chunked(bytes: bytes, peer: peer, what: what, keep: keep, in: world) { offset, n, request in
            ffmpi_irecv(id, Int32(peer), tag, pointer + offset, n, request)
        }
    }

    /// One request per `Comm.chunk` bytes; at least one, so an empty message still meets its receive.
    private func chunked(bytes: Int, peer: Int, what: String, keep: Any?, in world: MPIWorld,
                         _ post: (Int, Int, UnsafeMutablePointer<ffmpi_request>) -> Int32) throws -> [Pending] {
        var out: [Pending] = []
        var offset = 0
        repeat {
            let n = min(Comm.chunk, bytes - offset)
            let p = Pending(peer: members[peer], what: what, keep: keep)
            try check(post(offset, n, &p.request), what, world)
            out.append(p)
            offset += n
        } while offset < bytes
        return out
    }

    /// In-place sum over the communicator, in MPI's order.
    public func allreduceSum(_ values: UnsafeMutablePointer<Float>, count: Int, what: String, keep: Any?,
                             in world: MPIWorld) throws -> [Pending] {
        var out: [Pending] = []
        var offset = 0
        let step = Comm.chunk / 4
        repeat {
            let n = min(step, count - offset)
            let p = Pending(peer: nil, what: what, keep: keep)
            try check(ffmpi_iallreduce_sum_f32(id, values + offset, n, &p.request), what, world)
            out.append(p)
            offset += n
        } while offset < count
        world.bytesReduced += count * 4
        return out
    }

    public func allreduceSum(_ values: UnsafeMutablePointer<Double>, count: Int, what: String, keep: Any?,
                             in world: MPIWorld) throws -> Pending {
        precondition(count <= Comm.chunk / 8, "double reductions are for small statistics")
        let p = Pending(peer: nil, what: what, keep: keep)
        try check(ffmpi_iallreduce_sum_f64(id, values, count, &p.request), what, world)
        return p
    }

    /// Broadcast from communicator rank `root`.
    public func broadcast(_ buffer: Bytes, root: Int, what: String, in world: MPIWorld) throws -> [Pending] {
        var out: [Pending] = []
        var offset = 0
        repeat {
            let n = min(Comm.chunk, buffer.count - offset)
            let p = Pending(peer: root == rank ? nil : members[root], what: what, keep: buffer)
            try check(ffmpi_ibcast(id, Int32(root), buffer.pointer + offset, n, &p.request), what, world)
            out.append(p)
            offset += n
        } while offset < buffer.count
        return out
    }

    /// Every rank's `send` concatenated in rank order into `into`.
    public func allgather(_ send: Bytes, into: Bytes, what: String, in world: MPIWorld?) throws -> Pending {
        precondition(into.count == send.count * size, "allgather: \(into.count) bytes for \(size) x \(send.count)")
        let p = Pending(peer: nil, what: what, keep: [send, into])
        try check(ffmpi_iallgather(id, send.pointer, into.pointer, send.count, &p.request), what, world)
        return p
    }

    public func barrier(what: String, in world: MPIWorld) throws -> Pending {
        let p = Pending(peer: nil, what: what, keep: nil)
        try check(ffmpi_ibarrier(id, &p.request), what, world)
        return p
    }
}
