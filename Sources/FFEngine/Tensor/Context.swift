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

    /// "fp32" or "bf16": the precision of the convolution GEMMs (RecipeConfig.precision).
    public var precision: String { ff_ctx_precision(raw) == Int32(FF_PRECISION_BF16) ? "bf16" : "fp32" }

    /// Sets the convolution precision; bf16 needs AVX512_BF16 (and the AVX-512 level).
    public func setPrecision(_ name: String) throws {
        switch name {
        case "fp32":
            _ = ff_ctx_set_precision(raw, Int32(FF_PRECISION_FP32))
        case "bf16":
            guard ff_ctx_set_precision(raw, Int32(FF_PRECISION_BF16)) == 0 else {
                let why = ff_cpu_has_bf16() == 0
                    ? "this CPU has no AVX512_BF16 (vdpbf16ps; e.g. AMD Zen 4, Intel Cooper Lake or Sapphire Rapids and later have it)"
                    : "the SIMD level is capped at \(simdName) (FFREPRO_SIMD); bf16 needs avx512"
                throw FFError("precision = bf16: \(why). Use --precision fp32 (the default).")
            }
        default:
            throw FFError("precision must be fp32 or bf16 (got '\(name)').")
        }
    }

    /// The convolution algorithm mode of ffcore.h: "auto", "measure", "im2col", "f2", "f4", "f6".
    public func setConvAlgorithm(_ name: String) throws {
        let modes = ["auto": FF_CONV_ALGO_AUTO, "im2col": FF_CONV_ALGO_IM2COL, "f2": FF_CONV_ALGO_WINOGRAD_F2,
                     "f4": FF_CONV_ALGO_WINOGRAD_F4, "f6": FF_CONV_ALGO_WINOGRAD_F6, "measure": FF_CONV_ALGO_MEASURE]
        guard let m = modes[name] else {
            throw FFError("conv algorithm must be one of \(modes.keys.sorted().joined(separator: ", ")) (got '\(name)').")
        }
        ff_ctx_set_conv_algo(raw, Int32(m))
    }

    public var convAlgorithm: String {
        ["auto", "im2col", "f2", "f4", "f6", "measure"][Int(ff_ctx_conv_algo(raw))]
    }
    public var scratchBytes: Int { Int(ff_ctx_scratch_bytes(raw)) }
}
