import FFEngine
let ctx = ComputeContext()
print("ffrepro: \(ctx.threads) threads, simd \(ctx.simdName)")
