import Foundation

/// The local objective of ASGE and DTG-FF: spatial goodness of a post-ReLU map, a fixed
/// random projection to class logits, and (DTG-FF) a learnable temperature:
///   g = goodness(Y, P)            (n, C*P*P)
///   a = (g R) / T + b             (n, N),  T = exp(tau) when present, else 1
/// R and b are drawn once from N(0, std) and never trained (they are buffers).
public final class SpatialGoodness: LocalObjective {
    public let ctx: ComputeContext
    public let name: String
    public let partition: Int
    public let bins: Ops.GoodnessBins
    public let readout: Tensor       // (D, N)
    public let readoutBias: Tensor   // (N)
    public let logTemperature: Parameter?
    private var input: Tensor?
    private var projection: Tensor?

    public init(_ ctx: ComputeContext, name: String, channels: Int, partition: Int, bins: Ops.GoodnessBins = .adaptive,
                classes: Int, readoutStd: Float, learnTemperature: Bool, temperatureInit: Float = 0,
                temperatureLrScale: Double = 1, seed: UInt64) {
        self.ctx = ctx
        self.name = name
        self.partition = partition
        self.bins = bins
        let d = channels * partition * partition
        readout = Tensor(uninitialized: [d, classes])
        readoutBias = Tensor(uninitialized: [classes])
        Init.normal(readout, std: readoutStd, seed: seed, name: name + ".readout.weight")
        Init.normal(readoutBias, std: readoutStd, seed: seed, name: name + ".readout.bias")
        logTemperature = learnTemperature
            ? Parameter(name: name + ".log_temperature", value: Tensor(filled: temperatureInit, shape: [1]), decay: false)
            : nil
        logTemperature?.lrScale = temperatureLrScale
    }

    public var featureSize: Int { readout.shape[0] }
    public var parameters: [Parameter] { logTemperature.map { [$0] } ?? [] }
    public var buffers: [Buffer] {
        [Buffer(name: name + ".readout.weight", value: readout), Buffer(name: name + ".readout.bias", value: readoutBias)]
    }

    /// Current temperature T (nil when not learned, i.e. T = 1).
    public var temperature: Double? { logTemperature.map { Double(Float(exp(Double($0.value[0])))) } }
    private var inverseTemperature: Float { 1 / Float(temperature ?? 1) }

    public var shortDescription: String { "P\(partition)" }

    /// Logits (n, N) for the post-ReLU map `y` (n, C, H, W).
    public func forward(_ y: Tensor, cache: Bool) -> Tensor {
        let g = Ops.goodness(ctx, y, partition: partition, bins: bins)
        let proj = Ops.matmul(ctx, g, readout)
        let n = proj.shape[0], k = proj.shape[1]
        let logits = Tensor(uninitialized: proj.shape)
        let inv = inverseTemperature
        let p = proj.pointer, l = logits.pointer, b = readoutBias.pointer
        for i in 0..<n {
            for j in 0..<k { l[i * k + j] = p[i * k + j] * inv + b[j] }
        }
        if cache {
            input = y
            projection = proj
        }
        return logits
    }

    /// Gradient w.r.t. the map given dL/dlogits; adds dL/dtau into the temperature's grad.
    /// Where y == 0 (ReLU inactive) the result is 0, so it is also the pre-activation gradient.
    public func backward(_ dlogits: Tensor) -> Tensor {
        guard let y = input, let proj = projection else { preconditionFailure("\(name): backward without a cached forward") }
        let inv = inverseTemperature
        if let tau = logTemperature {
            // a = proj * exp(-tau) + b  =>  dL/dtau = -exp(-tau) * sum(dL/da * proj)
            var s = 0.0
            let d = dlogits.pointer, p = proj.pointer
            for i in 0..<proj.count { s += Double(d[i]) * Double(p[i]) }
            tau.grad[0] += Float(-s * Double(inv))
        }
        let dg = Ops.matmul(ctx, dlogits, readout, transB: true, alpha: inv)
        return Ops.goodnessBackward(ctx, y: y, dg: dg, partition: partition, bins: bins)
    }

    public func releaseCache() {
        input = nil
        projection = nil
    }
}
