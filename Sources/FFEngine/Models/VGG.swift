/// Units of a VGG-style stack (VGG8/11/16, the simple CNN, custom stacks). One unit per
/// conv layer, named "units.<i>":
///   conv_norm = none (the layer-local layout): conv3x3 + ReLU -> [tap] -> pool -> dropout -> norm
///   conv_norm = batch: conv3x3 + BatchNorm + ReLU -> [tap] -> pool -> dropout
/// norm is LayerNorm or RMS scaling (inter_layer_norm); decoupled_norm = false moves it in
/// front of the tap. Dropout is there only when the config's dropout is above 0.
enum VGGStack {
    static func units(_ ctx: ComputeContext, _ config: RecipeConfig, inputShape: [Int], clock: StepClock) throws -> [Unit] {
        let spec = try VGGSpec.resolve(config)
        try spec.validate(inputSize: min(inputShape[1], inputShape[2]), poolSize: config.poolSize)
        let seed = config.seed
        let usesBN = config.convNorm == "batch"
        var shape = inputShape
        var units: [Unit] = []
        for (i, c) in spec.channels.enumerated() {
            let name = "units.\(i)"
            var body: [Layer] = []
            body.append(Conv2d(ctx, name: name + ".conv", inChannels: shape[0], outChannels: c, kernel: 3, padding: 1,
                               relu: !usesBN, initScheme: Architectures.vggInitScheme(config), seed: seed))
            if usesBN {
                body.append(BatchNorm(ctx, name: name + ".bn", channels: c))
                body.append(Activation(ctx, .relu, inPlace: true))
            }
            let tap = [c, shape[1], shape[2]]
            let coupledNorm = !usesBN && !config.decoupledNorm
            func norm(_ shape: [Int]) -> Layer {
                config.interLayerNorm == "rms-scale"
                    ? RMSScale(ctx, eps: Float(config.rmsEps))
                    : LayerNorm(ctx, name: name + ".norm", featureShape: shape, eps: Float(config.lnEps), affine: config.lnAffine)
            }
            if coupledNorm { body.append(norm(tap)) }
            var post: [Layer] = []
            var out = tap
            if spec.poolAfter.contains(i + 1) {
                let pool = Pool2d(ctx, config.pool, kernel: config.poolSize)
                out = Array(pool.outputShape([1] + tap).dropFirst())
                post.append(pool)
            }
            if config.dropout > 0 {
                post.append(Dropout(ctx, name: name + ".dropout", p: Float(config.dropout), seed: seed, clock: clock))
            }
            if !usesBN && !coupledNorm { post.append(norm(out)) }
            let stage = spec.poolAfter.filter { $0 <= i }.count
            let unit = Unit(index: i, name: name, label: "layer \(i + 1)", body: Sequential(body), post: Sequential(post),
                            stage: stage, inputShape: shape)
            units.append(unit)
            shape = unit.outputShape
        }
        return units
    }
}
