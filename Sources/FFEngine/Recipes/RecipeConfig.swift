import Foundation

/// Everything a run depends on. A recipe is a named, complete `RecipeConfig`; command-line
/// options override fields; the resolved config is stored in every checkpoint (JSON), so
/// `repro eval` and `--resume` rebuild exactly the same model.
///
/// Fields marked [choice] are our documented choices where the papers are silent
/// (see papers/<paper>/README.md, "Assumptions").
public struct RecipeConfig: Codable, Equatable {
    // MARK: Identity
    public var name: String
    /// "asge", "dtgff" or "bp" (the backprop baselines).
    public var paper: String
    public var summary: String

    // MARK: Method: blocks, local objectives, and where the classifier's gradient goes
    /// The engine's unit of locality. The network is a sequence of units (a VGG conv layer,
    /// a ResNet basic block, a MobileNet inverted residual; stems are units too); a block is
    /// a run of consecutive units trained by backprop inside, with its input detached:
    /// "per-unit" (alias "per-layer": layer-local training), "per-residual-unit" (like
    /// per-unit, the stem joins the unit after it), "per-stage" (units between
    /// downsamplings; the stem joins the first stage), "whole" (end-to-end backprop), or a
    /// comma list of unit counts ("3,2,2,2"), or "groups-of-M" (blocks of M consecutive
    /// units from the input side, the last one holding the remainder: BiCovG's Hybrid
    /// Goodness Blocks).
    public var blocks: String = "per-unit"
    /// The local objective: "spatial-goodness" (ASGE/DTG-FF patch goodness + fixed readout),
    /// "class-goodness" (SFF: aux conv to N maps, g_k = mean a_k^2, log-sum-exp loss),
    /// "covariance-goodness" (BiCovG: patch energies and covariance energies, fixed readout;
    /// the `cov*` fields) or "none".
    public var localLoss: String = "spatial-goodness"
    /// Where local objectives sit: "block-output" (the tap of each block's last unit) or
    /// "every-unit" (every unit's tap; with one whole block this is BP-DeepSup).
    public var localLossAt: String = "block-output"
    /// Whether the classifier head's gradient enters the backbone (the backprop baselines).
    /// Its inputs must then all come from one block. false: the head trains on detached features.
    public var headBackprop: Bool = false
    /// Normalisation applied to every block's output before it is passed on (detached):
    /// "none" or "layernorm" (SFF; per sample over C, H, W, no affine parameters). [choice]
    public var blockNorm: String = "none"

    // MARK: Data
    /// Catalog name: mnist, fashion-mnist, cifar10, cifar100, imagenet100, tiny-imagenet, imagenette.
    public var dataset: String
    /// Label set inside the shards: "labels", or "coarse_labels" (CIFAR-100's 20 superclasses).
    public var labels: String = "labels"
    /// "none", "crop-flip" (random crop with padding + horizontal flip) or "rrc-flip"
    /// (random-resized-crop + flip; evaluation uses a center crop). [choice]
    public var augment: String = "none"
    /// Padding of the random crop. [choice]
    public var cropPadding: Int = 4
    /// Square side the stored images are resized to before augmentation (antialiased
    /// resampling, bilinear when enlarging, on uint8 pixels); nil = as stored. The ASGE
    /// authors' code resizes MNIST/F-MNIST to 32x32.
    public var resize: Int?
    /// torchvision ColorJitter(brightness, contrast, saturation, hue) after the crop of the
    /// training images, e.g. [0.4, 0.4, 0.4, 0.1]; nil = none.
    public var colorJitter: [Double]?
    /// torchvision RandomGrayscale probability after the colour jitter (training only).
    public var randomGrayscale: Double = 0
    /// How pixels become network inputs: "standardize" ((pixel/255 - mean) / std per channel,
    /// train-split statistics) or "rms-scale" (pixel/255 divided by the sample's RMS over
    /// C, H, W plus rms_eps; no centring: the ASGE authors' code).
    public var inputNorm: String = "standardize"
    /// Minimum area fraction of random-resized-crop. [choice]
    public var rrcScaleMin: Double = 0.08
    /// Network input size; nil = the stored image size. ImageNet recipes crop 224 from 256.
    public var inputSize: Int?
    /// Train on the first N images of a fixed seeded permutation (nil = all).
    public var subset: Int?
    /// Seed of that permutation (nil = the run's seed), so several seeds can train on the
    /// same subset.
    public var subsetSeed: UInt64?
    /// Evaluate on the first N images of each evaluation split (nil = all).
    public var evalSubset: Int?

    // MARK: Model
    /// "vgg8", "vgg11", "vgg16", "cnn4" (VGG-style stacks; "custom" takes `channels` and
    /// `pool_after`), "resnet18", "mobilenetv3-small" or "mobilenetv3-large".
    public var arch: String
    /// Conv normalisation of the VGG-style stacks: "none" (conv + ReLU, LayerNorm after the
    /// pooling: the layer-local layout) or "batch" (conv + BatchNorm + ReLU, no LayerNorm).
    public var convNorm: String = "none"
    /// ResNet/MobileNetV3 stem: "auto" (imagenet for inputs of 128 pixels or more, else
    /// cifar), "cifar" (ResNet: 3x3 stride-1 conv, no max-pool; MobileNetV3: stride-1 stem
    /// and first downsampling block at stride 1 [choice]) or "imagenet" (the published stem).
    public var stem: String = "auto"
    /// Weight initialisation. ResNet/MobileNetV3: "torchvision" (kaiming-normal fan-out
    /// convs, BN 1/0, as torchvision) or "pytorch-default" (fan-in uniform). VGG stacks use
    /// PyTorch's layer defaults (fan-in uniform) unless "kaiming-normal": conv and classifier
    /// weights N(0, 2 / fan_in) (kaiming_normal_, ReLU gain), biases 0 (the ASGE authors' code).
    public var initScheme: String = "torchvision"
    /// Conv channels of a custom stack (arch = "custom"), e.g. tiny models in tests.
    public var channels: [Int]?
    /// ASGE partition hyper-parameter alpha (eq. 3).
    public var alpha: Double = 1
    /// Goodness patches when P_l does not divide the map: "adaptive" (bins of floor or ceil
    /// size covering the whole map, like adaptive_avg_pool2d) or "floor" (equal
    /// floor(H/P) patches, the remainder unused, like avg_pool2d). [choice]
    public var goodnessBins: Ops.GoodnessBins = .adaptive
    /// Pooling kind after the pooling layers: rms (ASGE), avg, max.
    public var pool: Ops.PoolKind = .rms
    /// Pooling window = stride. [choice]
    public var poolSize: Int = 2
    /// 1-based conv layers followed by pooling; nil = the architecture's default. [choice for VGG8]
    public var poolAfter: [Int]?
    /// Prediction strategy: "fusion", "last", "best", or from the readouts' scores without a
    /// feature classifier: "goodness-mean" (their mean), "goodness-last" (the last one),
    /// "goodness-logistic" (BiCovG's Logistic Fusion: sum_l sigmoid(w_l) a_l, learnable
    /// w_l trained by its own cross-entropy on the detached scores).
    public var pred: String = "fusion"
    /// The Fusion/Last Pred classifier: "concat" (one Linear on the concatenated features)
    /// or "per-layer-sum" (one Linear per layer read, their logits summed: the ASGE
    /// authors' code; each layer's Linear has its own bias and initialisation fan-in).
    public var fusionHead: String = "concat"
    /// Where the classifier head reads each layer: "tap" (GAP of the post-ReLU map, where
    /// the goodness is taken) or "output" (GAP after pooling/normalisation). [choice]
    public var headInput: String = "tap"
    /// What each VGG layer's forwarded output is normalised by: "layernorm" (per sample over
    /// C, H, W, centred) or "rms-scale" (divided by the per-sample RMS over C, H, W plus
    /// rms_eps, no centring, no affine: the ASGE authors' code).
    public var interLayerNorm: String = "layernorm"
    /// Epsilon added to the RMS by rms-scale (input_norm and inter_layer_norm); the ASGE
    /// authors use e^-50.
    public var rmsEps: Double = 1.9287498479639178e-22
    /// Dropout probability on each VGG layer's forwarded output, after pooling and before
    /// the normalisation (training only; 0 = none).
    public var dropout: Double = 0
    /// LayerNorm epsilon. [choice]
    public var lnEps: Double = 1e-5
    /// Whether the per-sample LayerNorm has affine parameters. Under layer-local training
    /// they would receive no gradient (each loss is taken before pooling and LayerNorm),
    /// so the layer-local recipes use none; the backprop recipes train them. [choice]
    public var lnAffine: Bool = false
    /// Decoupled normalisation (DTG-FF; also ASGE's layout): goodness is taken on the
    /// un-normalised ReLU output and only the forwarded tensor is LayerNorm-ed. false puts
    /// the LayerNorm before the goodness (the readout sees the normalised map). [choice]
    public var decoupledNorm: Bool = true
    /// Fixed readout std = readoutStdScale / sqrt(N) for weights and bias. [choice: the paper writes N(0, 1/sqrt(N))]
    public var readoutStdScale: Double = 1

    // MARK: SFF
    /// Kernel size of the auxiliary conv from a block output to the N class maps (odd; 1 = 1x1).
    public var auxKernel: Int = 1
    /// Whether the auxiliary conv has a bias. [choice: PyTorch's Conv2d default]
    public var auxBias: Bool = true

    // MARK: BiCovG (local_loss = covariance-goodness; papers/bicovg/README.md)
    /// Whether the covariance energies are computed; false leaves plain ASGE goodness (the
    /// ablation "cov off": the same readout rows for the patch energies).
    public var cov: Bool = true
    /// K, the fixed random unit directions u_k in R^C of the cross-channel axis. [choice]
    public var covDirections: Int = 64
    /// Pyramid levels P of the spatial axis: energies over P x P patches, each level clipped
    /// to the map and repeats dropped. [choice]
    public var covLevels: [Int] = [1, 2, 4]
    /// Whether ASGE's patch energies (partition P_l from alpha) are concatenated in front of
    /// the covariance energies. [choice]
    public var covPatchEnergies: Bool = true
    /// Feature Alignment Layer: x + Conv1x1(x) on every block's input except the first
    /// block's, the conv zero-initialised and trained by that block's loss.
    public var fal: Bool = false
    /// Whether the Feature Alignment conv has a bias (zero-initialised too). [choice]
    public var falBias: Bool = true
    /// pred = goodness-logistic: initial gate logits w_l, linear in depth from the first
    /// readout's value to the last's (sigmoid -2 = 0.12, sigmoid 2 = 0.88). [choice]
    public var fusionInitFirst: Double = -2
    public var fusionInitLast: Double = 2
    /// Whether weight decay applies to the gate logits w_l (it would pull every gate to
    /// 1/2). [choice]
    public var fusionDecay: Bool = false

    // MARK: Transfer
    /// Initial weights from a .safetensors file (torchvision/timm names) or a repro checkpoint,
    /// matched by name with every shape checked (WeightTransfer); nil = fresh initialisation.
    public var initFrom: String?

    // MARK: DTG-FF
    /// Learnable per-layer temperature T = exp(tau) dividing the goodness.
    public var learnTemperature: Bool = false
    /// Initial tau (T = exp(tau)). [choice]
    public var temperatureInit: Double = 0
    /// tau's learning rate as a multiple of the layer's (its own parameter group). At 1 and
    /// lr 2e-4, AdamW moves tau by at most ~2e-4 per step, so T barely leaves 1 in short
    /// runs (issue 20). [choice: 1 = the paper's single learning rate]
    public var temperatureLrScale: Double = 1
    /// Fused classifier with BatchNorm1d before the Linear (DTG-FF).
    public var fusionBatchNorm: Bool = false
    /// Weight of each local readout loss that is trained together with the classifier's
    /// loss in one block (BP-DeepSup). [choice: equal weights]
    public var deepSupWeight: Double = 1

    // MARK: Compute
    /// Precision of the convolution GEMMs: "fp32", or "bf16" (bfloat16 inputs, fp32
    /// accumulation, fp32 weights and optimizer; needs AVX512_BF16). See ffcore.h.
    public var precision: String = "fp32"

    // MARK: Optimisation
    /// "adamw" or "sgd".
    public var optimizer: String = "adamw"
    public var lr: Double
    public var minLr: Double
    public var weightDecay: Double
    public var momentum: Double = 0.9
    public var nesterov: Bool = false
    public var beta1: Double = 0.9
    public var beta2: Double = 0.999
    public var adamEps: Double = 1e-8
    /// Linear warm-up epochs before the cosine schedule. [choice]
    public var warmupEpochs: Int = 0
    public var epochs: Int
    public var batchSize: Int
    /// Gradient accumulation: each optimizer step sums K micro-batches of batchSize/K.
    public var accumulate: Int = 1
    public var seed: UInt64 = 0

    // MARK: Reporting
    /// The paper's test accuracy (%) for this recipe, printed next to ours.
    public var paperTop1: Double?
    public var paperTop5: Double?
    /// Where the number comes from, e.g. "ASGE Table 4".
    public var paperSource: String?

    /// `training` names a preset of the method fields (see `training`).
    public init(name: String, paper: String, summary: String, training: String, dataset: String, arch: String,
                lr: Double, minLr: Double, weightDecay: Double, epochs: Int, batchSize: Int) {
        self.name = name
        self.paper = paper
        self.summary = summary
        self.dataset = dataset
        self.arch = arch
        self.lr = lr
        self.minLr = minLr
        self.weightDecay = weightDecay
        self.epochs = epochs
        self.batchSize = batchSize
        self.training = training
    }

    /// A preset of (blocks, local_loss, local_loss_at, head_backprop) under a familiar name;
    /// reading it names the current combination. Setting it is a shorthand, not a mode: the
    /// engine reads only the fields.
    /// - "layer-local": one unit per block, local objective at each block output, detached head;
    /// - "block-local": blocks of several units (the `blocks` field), detached head;
    /// - "backprop": one whole block, no local loss, the head's gradient trains everything
    ///   (VGG stacks: conv + BatchNorm + ReLU);
    /// - "deep-sup": one whole block, the spatial-goodness readout of every unit added to the
    ///   head's loss (affine LayerNorm).
    public var training: String {
        get {
            if headBackprop && blocks == "whole" { return localLoss == "none" ? "backprop" : "deep-sup" }
            return ["per-unit", "per-layer"].contains(blocks) ? "layer-local" : "block-local"
        }
        set {
            switch newValue {
            case "layer-local", "block-local":
                if newValue == "layer-local" || blocks == "whole" { blocks = "per-unit" }
                if localLoss == "none" { localLoss = "spatial-goodness" }
                localLossAt = "block-output"
                headBackprop = false
            case "backprop":
                blocks = "whole"
                localLoss = "none"
                headBackprop = true
                convNorm = "batch"
                lnAffine = true
            case "deep-sup":
                blocks = "whole"
                if localLoss == "none" { localLoss = "spatial-goodness" }
                localLossAt = "every-unit"
                headBackprop = true
                lnAffine = true
            default:
                preconditionFailure("unknown training preset '\(newValue)'; one of \(RecipeConfig.trainingPresets)")
            }
        }
    }

    public static let trainingPresets = ["layer-local", "block-local", "backprop", "deep-sup"]

    /// Whether any local objective exists (layer-local, block-local, BP-DeepSup readouts).
    public var hasLocalLoss: Bool { localLoss != "none" }

    /// Images per forward/backward pass: batch_size / accumulate. Evaluation uses it too,
    /// so a recipe that fits in memory for training also fits for evaluation.
    public var microBatch: Int { max(1, batchSize / max(1, accumulate)) }

    // MARK: JSON

    /// NaN/Inf are written as the strings "nan", "inf", "-inf" (validate() refuses them, but
    /// a config is also printed and stored before or without validation): encoding cannot
    /// fail, where plain JSON has no such numbers and JSONEncoder would throw.
    public static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return e
    }()

    public static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return d
    }()

    public func json() -> String {
        // With the string strategy for non-finite numbers a config always encodes.
        guard let data = try? RecipeConfig.encoder.encode(self) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    /// Reads a stored config. Configs written before blocks existed (a `training` mode and
    /// `bp_norm` instead of the method fields) are translated to the fields that train the
    /// same network the same way; fields added since take their defaults.
    public static func fromJSON(_ text: String, source: String) throws -> RecipeConfig {
        do {
            guard var dict = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
                throw FFError("not a JSON object")
            }
            let legacy = dict.removeValue(forKey: "training") as? String
            let bpNorm = dict.removeValue(forKey: "bp_norm") as? String
            if let legacy, dict["blocks"] == nil {
                guard trainingPresets.contains(legacy) else { throw FFError("unknown training mode '\(legacy)'") }
                var preset = RecipeConfig(name: "", paper: "", summary: "", training: legacy, dataset: "", arch: "",
                                          lr: 1, minLr: 0, weightDecay: 0, epochs: 1, batchSize: 1)
                if legacy == "backprop" && bpNorm == "layer" { preset.convNorm = "none" }
                let fields = try JSONSerialization.jsonObject(with: encoder.encode(preset)) as! [String: Any]
                for key in ["blocks", "local_loss", "local_loss_at", "head_backprop", "conv_norm"] { dict[key] = fields[key] }
                if legacy != "layer-local" { dict["ln_affine"] = true }
            }
            let defaults = try JSONSerialization.jsonObject(with: encoder.encode(
                RecipeConfig(name: "", paper: "", summary: "", training: "layer-local", dataset: "", arch: "",
                             lr: 1, minLr: 0, weightDecay: 0, epochs: 1, batchSize: 1))) as! [String: Any]
            for (key, value) in defaults where dict[key] == nil { dict[key] = value }
            return try decoder.decode(RecipeConfig.self, from: JSONSerialization.data(withJSONObject: dict))
        } catch {
            throw FFError(.corrupt, "\(source): the stored recipe config is not readable by this version of repro: "
                + "\(FFError.plainJSON(error, text: text)).", path: source)
        }
    }

    /// A copy with one field set from "key=value": key in snake_case as `repro show`
    /// prints it, value in JSON (a bare word is taken as a string).
    public func setting(_ assignment: String) throws -> RecipeConfig {
        guard let eq = assignment.firstIndex(of: "=") else {
            throw FFError("--set expects key=value, got '\(assignment)'.")
        }
        let key = String(assignment[..<eq]), raw = String(assignment[assignment.index(after: eq)...])
        if key == "training" {
            guard RecipeConfig.trainingPresets.contains(raw) else {
                throw FFError("--set training=\(raw): the training presets are \(RecipeConfig.trainingPresets.joined(separator: ", ")).")
            }
            var c = self
            c.training = raw
            return c
        }
        guard var dict = try JSONSerialization.jsonObject(with: RecipeConfig.encoder.encode(self)) as? [String: Any] else {
            throw FFError("--set: the config cannot be represented as a JSON object.")
        }
        let known = Set(dict.keys).union(["subset", "eval_subset", "input_size", "pool_after", "channels",
                                          "paper_top1", "paper_top5", "paper_source", "init_from", "resize",
                                          "color_jitter", "subset_seed"])
        guard known.contains(key) else {
            throw FFError("--set: unknown config field '\(key)'.\(Suggest.hint(key, among: Array(known))) `repro show NAME "
                + "--all` lists the fields.")
        }
        let value = (try? JSONSerialization.jsonObject(with: Data(raw.utf8), options: [.fragmentsAllowed])) ?? raw
        dict[key] = value is NSNull ? nil : value
        do {
            return try RecipeConfig.decoder.decode(RecipeConfig.self, from: JSONSerialization.data(withJSONObject: dict))
        } catch let e as DecodingError {
            var wanted = RecipeConfig.expected(e)
            if key == "pool" { wanted = "one of " + Ops.PoolKind.allCases.map(\.rawValue).joined(separator: ", ") }
            if case .dataCorrupted = e, Double(raw) != nil { wanted = "a whole number in range" }
            throw FFError("--set \(assignment): \(key) takes \(wanted), not \(raw.isEmpty ? "an empty value" : "'\(raw)'"). "
                + "`repro show NAME` prints every field with its current value.")
        }
    }

    /// What a field wanted, in words (no Swift type names or coding paths).
    static func expected(_ e: DecodingError) -> String {
        func words(_ t: Any.Type) -> String {
            switch t {
            case is Int.Type, is UInt64.Type: return "a whole number"
            case is Double.Type: return "a number"
            case is Bool.Type: return "true or false"
            case is String.Type: return "a word or a quoted string"
            default: return "\(t)".hasPrefix("Array") ? "a JSON list such as [1,3,5]" : "another kind of value"
            }
        }
        switch e {
        case let .typeMismatch(t, _), let .valueNotFound(t, _): return words(t)
        case let .dataCorrupted(ctx):
            return ctx.debugDescription.contains("does not fit") ? "a whole number in range" : "one of its documented values"
        default: return "another kind of value"
        }
    }

    /// Rejects values and combinations that cannot run, with a message naming the field, the
    /// value and the allowed range (command-line values and `--set` land here too).
    public func validate() throws {
        let known: [(String, String, [String])] = [
            ("local_loss", localLoss, ["spatial-goodness", "class-goodness", "covariance-goodness", "none"]),
            ("local_loss_at", localLossAt, ["block-output", "every-unit"]),
            ("block_norm", blockNorm, ["none", "layernorm"]),
            ("conv_norm", convNorm, ["none", "batch"]),
            ("precision", precision, ["fp32", "bf16"]),
            ("stem", stem, ["auto", "cifar", "imagenet"]),
            ("init_scheme", initScheme, ["torchvision", "pytorch-default", "kaiming-normal"]),
            ("input_norm", inputNorm, ["standardize", "rms-scale"]),
            ("inter_layer_norm", interLayerNorm, ["layernorm", "rms-scale"]),
            ("fusion_head", fusionHead, ["concat", "per-layer-sum"]),
            ("pred", pred, ["fusion", "last", "best", "goodness-mean", "goodness-last", "goodness-logistic"]),
            ("optimizer", optimizer, ["adamw", "sgd"]),
            ("augment", augment, ["none", "flip", "crop-flip", "rrc-flip"]),
            ("labels", labels, ["labels", "coarse_labels"]),
            ("head_input", headInput, ["tap", "output"]),
        ]
        for (field, value, allowed) in known where !allowed.contains(value) {
            throw FFError("config field \(field) = '\(value)' is not one of: \(allowed.joined(separator: ", ")).")
        }
        if name.isEmpty || name.contains("/") { throw FFError("config field name = '\(name)' must be non-empty without '/'.") }
        // Numbers: finite and within a range that can run.
        func real(_ field: String, _ v: Double, _ range: ClosedRange<Double>, lowerOpen lower: Bool = false, upperOpen upper: Bool = false,
                  _ note: String = "") throws {
            let inside = v.isFinite && (lower ? v > range.lowerBound : v >= range.lowerBound)
                && (upper ? v < range.upperBound : v <= range.upperBound)
            if !inside {
                let lo = lower ? "(" : "[", hi = upper ? ")" : "]"
                throw FFError("config field \(field) = \(v) is outside \(lo)\(range.lowerBound), \(range.upperBound)\(hi)\(note).")
            }
        }
        func int(_ field: String, _ v: Int, _ range: ClosedRange<Int>, _ note: String = "") throws {
            if !range.contains(v) {
                throw FFError("config field \(field) = \(v) is outside \(range.lowerBound)...\(range.upperBound)\(note).")
            }
        }
        try real("lr", lr, 0...10, lowerOpen: true)
        try real("min_lr", minLr, 0...lr, " (0 <= min_lr <= lr)")
        try real("weight_decay", weightDecay, 0...10)
        try real("momentum", momentum, 0...1, upperOpen: true)
        try real("beta1", beta1, 0...1, upperOpen: true)
        try real("beta2", beta2, 0...1, upperOpen: true)
        try real("adam_eps", adamEps, 0...1, lowerOpen: true)
        try real("alpha", alpha, 0...1e6)
        try real("ln_eps", lnEps, 0...1, lowerOpen: true)
        try real("rms_eps", rmsEps, 0...1, lowerOpen: true)
        try real("dropout", dropout, 0...1, upperOpen: true)
        try real("random_grayscale", randomGrayscale, 0...1)
        if let j = colorJitter {
            guard j.count == 4 else {
                throw FFError("config field color_jitter must list 4 numbers [brightness, contrast, saturation, hue] (got \(j.count)).")
            }
            let names = ["brightness", "contrast", "saturation", "hue"], highs = [1e3, 1e3, 1e3, 0.5]
            for k in 0..<4 { try real("color_jitter \(names[k])", j[k], 0...highs[k]) }
        }
        if let v = resize { try int("resize", v, 1...4096) }
        try real("readout_std_scale", readoutStdScale, 0...1e3, lowerOpen: true)
        try real("temperature_init", temperatureInit, -20...20, " (T = exp(tau))")
        try real("temperature_lr_scale", temperatureLrScale, 0...1e4)
        try real("deep_sup_weight", deepSupWeight, 0...1e3)
        try real("rrc_scale_min", rrcScaleMin, 0...1, lowerOpen: true)
        try int("epochs", epochs, 1...100_000)
        try int("batch_size", batchSize, 1...65536)
        if accumulate < 1 || accumulate > batchSize || batchSize % accumulate != 0 {
            throw FFError("config field accumulate = \(accumulate) must be >= 1 and divide batch_size = \(batchSize).")
        }
        try int("warmup_epochs", warmupEpochs, 0...epochs, " (at most epochs)")
        try int("crop_padding", cropPadding, 0...256)
        try int("pool_size", poolSize, 1...64)
        try int("aux_kernel", auxKernel, 1...31)
        if let v = inputSize { try int("input_size", v, 1...4096) }
        if let v = subset { try int("subset", v, 1...Int(Int32.max)) }
        if let v = evalSubset { try int("eval_subset", v, 1...Int(Int32.max)) }
        if let ch = channels, let bad = ch.first(where: { $0 < 1 || $0 > 16384 }) {
            throw FFError("config field channels has \(bad); every entry must be in 1...16384.")
        }
        if let ch = channels, ch.count > 256 { throw FFError("config field channels has \(ch.count) layers; at most 256.") }
        for (field, v) in [("paper_top1", paperTop1), ("paper_top5", paperTop5)] {
            if let v = v { try real(field, v, 0...100) }
        }
        if ["best", "goodness-mean", "goodness-last", "goodness-logistic"].contains(pred) && (!hasLocalLoss || headBackprop) {
            throw FFError("pred = \(pred) predicts from the local readouts and trains no classifier: it needs "
                + "local_loss != none and head_backprop = false (this config: local_loss \(localLoss), "
                + "head_backprop \(headBackprop)).")
        }
        if headBackprop && !["fusion", "last"].contains(pred) {
            throw FFError("head_backprop = true needs a classifier head (pred = fusion or last), not pred = \(pred).")
        }
        if !hasLocalLoss && !headBackprop {
            throw FFError("local_loss = none and head_backprop = false: nothing would train the network. "
                + "Choose a local objective, or let the classifier's gradient train it (head_backprop = true).")
        }
        if auxKernel < 1 || auxKernel % 2 == 0 {
            throw FFError("aux_kernel must be an odd size >= 1 (got \(auxKernel)).")
        }
        if localLoss == "covariance-goodness" {
            if !cov && !covPatchEnergies {
                throw FFError("local_loss = covariance-goodness with cov = false and cov_patch_energies = false reads "
                    + "nothing; turn one of them on (cov = false alone is plain ASGE goodness).")
            }
            if covDirections < 1 { throw FFError("cov_directions must be at least 1 (got \(covDirections)).") }
            if covLevels.isEmpty || covLevels.count > 16 || covLevels.contains(where: { $0 < 1 }) {
                throw FFError("cov_levels must list 1 to 16 pyramid levels, each >= 1 (got \(covLevels)).")
            }
            if learnTemperature {
                throw FFError("learn_temperature applies to local_loss = spatial-goodness, not covariance-goodness.")
            }
        }
        _ = try BlockPartition.parse(blocks)
        try Architectures.validate(self)
    }
}
