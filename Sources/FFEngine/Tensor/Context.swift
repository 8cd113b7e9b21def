import FFCore
import Foundation

/// Owns the FFCore context (thread pool, scratch arenas). One per process is typical;
/// kernels called through it run on `threads` threads.
public final class ComputeContext: @unchecked Sendable {
    public let raw: OpaquePointer
    public let threads: Int

    /// Activations are allocated and freed every step. Above glibc's mmap threshold each
    /// allocation would be a fresh mapping that page-faults on first touch; raising the
    /// threshold keeps freed blocks in the heap for the next step. Done once per process.
    private static let tuneAllocator: Void = ff_tune_process_allocator()

    /// `threads` <= 0: FFREPRO_THREADS if set, else all online cores.
    public init(threads: Int = 0) {
        _ = ComputeContext.tuneAllocator
        var n = threads
        if n <= 0, let env = ProcessInfo.processInfo.environment["FFREPRO_THREADS"], let v = Int(env), v > 0 {
            n = v
        }
        guard let ctx = ff_ctx_create(Int32(n)) else { fatalError("ff_ctx_create failed (out of memory)") }
        raw = ctx
        self.threads = Int(ff_ctx_threads(ctx))
    }

    deinit { ff_ctx_destroy(raw) }

    public var simdName: String { String(cString: ff_simd_name(ff_ctx_simd(raw))) }
    public var scratchBytes: Int { Int(ff_ctx_scratch_bytes(raw)) }
}
