import Foundation

/// `repro show`: a recipe's config as a reader wants it. Fields are grouped by what they
/// belong to (network, objective, between layers, predictor, data, optimisation), each with
/// a one-line meaning; fields that do nothing for the recipe (`noEffect`) and unset optional
/// ones are left out unless `all`. The stored form stays the flat JSON (`--json`,
/// config.json), so every checkpoint keeps loading.
public enum ConfigGuide {
    public struct Field {
        public let key: String
        public let section: String
        public let meaning: String
    }

    public static let sections = ["Recipe", "Network", "Local objective", "Between layers", "Predictor", "Data",
                                  "Optimisation", "Transfer"]

    public static let fields: [Field] = [
        Field(key: "paper", section: "Recipe", meaning: "paper it reproduces (papers/<paper>/README.md)"),
        Field(key: "paper_top1", section: "Recipe", meaning: "the paper's top-1 % for this setting"),
        Field(key: "paper_top5", section: "Recipe", meaning: "the paper's top-5 %"),
        Field(key: "paper_source", section: "Recipe", meaning: "where the paper gives that number"),
        Field(key: "arch", section: "Network", meaning: "architecture (vgg8, vgg11-asge, resnet18, mobilenetv3-*, custom)"),
        Field(key: "channels", section: "Network", meaning: "conv widths (custom / VGG stacks)"),
        Field(key: "pool_after", section: "Network", meaning: "1-based convs followed by 2x2 pooling"),
        Field(key: "pool", section: "Network", meaning: "pooling kind: rms, avg or max"),
        Field(key: "pool_size", section: "Network", meaning: "pooling window and stride"),
        Field(key: "conv_norm", section: "Network", meaning: "normalisation inside a conv unit (none, batch)"),
        Field(key: "stem", section: "Network", meaning: "ResNet/MobileNet stem: auto, cifar or imagenet"),
        Field(key: "init_scheme", section: "Network", meaning: "weight initialisation (torchvision defaults or kaiming-normal)"),
        Field(key: "input_size", section: "Network", meaning: "side of the network input (crop); default the stored size"),
        Field(key: "precision", section: "Network", meaning: "convolution GEMM precision: fp32 or bf16"),
        Field(key: "blocks", section: "Local objective", meaning: "training layout: per-unit (layer-local), grouped or whole"),
        Field(key: "local_loss", section: "Local objective", meaning: "spatial-goodness, covariance-goodness, class-goodness or none"),
        Field(key: "local_loss_at", section: "Local objective", meaning: "block-output or every-unit"),
        Field(key: "head_backprop", section: "Local objective", meaning: "the classifier's gradient enters the backbone (BP)"),
        Field(key: "alpha", section: "Local objective", meaning: "ASGE partition factor of the spatial goodness"),
        Field(key: "goodness_bins", section: "Local objective", meaning: "how the map is split into goodness bins"),
        Field(key: "readout_std_scale", section: "Local objective", meaning: "fixed readout std = scale / sqrt(classes)"),
        Field(key: "cov", section: "Local objective", meaning: "BiCovG covariance energies on (false = plain goodness)"),
        Field(key: "cov_directions", section: "Local objective", meaning: "K random channel directions of the covariance"),
        Field(key: "cov_levels", section: "Local objective", meaning: "spatial pyramid levels of the covariance energies"),
        Field(key: "cov_patch_energies", section: "Local objective", meaning: "ASGE patch energies in front of the covariance ones"),
        Field(key: "aux_kernel", section: "Local objective", meaning: "SFF auxiliary conv kernel (block output -> class maps)"),
        Field(key: "aux_bias", section: "Local objective", meaning: "SFF auxiliary conv has a bias"),
        Field(key: "learn_temperature", section: "Local objective", meaning: "DTG-FF learnable temperature T = exp(tau)"),
        Field(key: "temperature_init", section: "Local objective", meaning: "initial tau"),
        Field(key: "temperature_lr_scale", section: "Local objective", meaning: "tau's learning rate / the layer's"),
        Field(key: "deep_sup_weight", section: "Local objective", meaning: "weight of each readout loss in BP-DeepSup"),
        Field(key: "inter_layer_norm", section: "Between layers", meaning: "layernorm or rms-scale on the forwarded tensor"),
        Field(key: "rms_eps", section: "Between layers", meaning: "epsilon of the RMS scaling"),
        Field(key: "ln_eps", section: "Between layers", meaning: "LayerNorm epsilon"),
        Field(key: "ln_affine", section: "Between layers", meaning: "LayerNorm has a learned scale and shift"),
        Field(key: "decoupled_norm", section: "Between layers", meaning: "goodness on the un-normalised output, norm only forward"),
        Field(key: "block_norm", section: "Between layers", meaning: "normalisation of a block's output (SFF)"),
        Field(key: "dropout", section: "Between layers", meaning: "dropout after pooling, training only"),
        Field(key: "fal", section: "Between layers", meaning: "BiCovG Feature Alignment Layers"),
        Field(key: "fal_bias", section: "Between layers", meaning: "Feature Alignment conv has a bias"),
        Field(key: "pred", section: "Predictor", meaning: "fusion, last, best, goodness-mean/-last/-logistic"),
        Field(key: "fusion_head", section: "Predictor", meaning: "concat (one Linear) or per-layer-sum (one Linear per layer)"),
        Field(key: "head_input", section: "Predictor", meaning: "what the head reads: tap (pre-pooling) or output"),
        Field(key: "fusion_batch_norm", section: "Predictor", meaning: "BatchNorm1d before the fused Linear (DTG-FF)"),
        Field(key: "fusion_init_first", section: "Predictor", meaning: "Logistic Fusion: first gate logit"),
        Field(key: "fusion_init_last", section: "Predictor", meaning: "Logistic Fusion: last gate logit"),
        Field(key: "fusion_decay", section: "Predictor", meaning: "weight decay on the gate logits"),
        Field(key: "dataset", section: "Data", meaning: "dataset name (data/<dataset>, made by `repro prep`)"),
        Field(key: "labels", section: "Data", meaning: "label set: labels or coarse_labels"),
        Field(key: "resize", section: "Data", meaning: "resize stored images to this side first"),
        Field(key: "augment", section: "Data", meaning: "none, flip, crop-flip or rrc-flip"),
        Field(key: "crop_padding", section: "Data", meaning: "padding of the random crop"),
        Field(key: "rrc_scale_min", section: "Data", meaning: "smallest area of random-resized-crop"),
        Field(key: "color_jitter", section: "Data", meaning: "ColorJitter [brightness, contrast, saturation, hue]"),
        Field(key: "random_grayscale", section: "Data", meaning: "RandomGrayscale probability"),
        Field(key: "input_norm", section: "Data", meaning: "standardize (mean/std) or rms-scale"),
        Field(key: "subset", section: "Data", meaning: "train on the first N images of a fixed permutation"),
        Field(key: "subset_seed", section: "Data", meaning: "seed of that permutation"),
        Field(key: "eval_subset", section: "Data", meaning: "evaluate on the first N images"),
        Field(key: "optimizer", section: "Optimisation", meaning: "adamw or sgd"),
        Field(key: "lr", section: "Optimisation", meaning: "peak learning rate"),
        Field(key: "min_lr", section: "Optimisation", meaning: "end of the cosine schedule"),
        Field(key: "warmup_epochs", section: "Optimisation", meaning: "linear warm-up epochs"),
        Field(key: "weight_decay", section: "Optimisation", meaning: "decoupled (AdamW) or L2 (SGD) weight decay"),
        Field(key: "momentum", section: "Optimisation", meaning: "SGD momentum"),
        Field(key: "nesterov", section: "Optimisation", meaning: "SGD Nesterov momentum"),
        Field(key: "beta1", section: "Optimisation", meaning: "AdamW beta1"),
        Field(key: "beta2", section: "Optimisation", meaning: "AdamW beta2"),
        Field(key: "adam_eps", section: "Optimisation", meaning: "AdamW epsilon"),
        Field(key: "epochs", section: "Optimisation", meaning: "epochs (the cosine schedule spans them)"),
        Field(key: "batch_size", section: "Optimisation", meaning: "images per optimizer step"),
        Field(key: "accumulate", section: "Optimisation", meaning: "micro-batches per step (gradient accumulation)"),
        Field(key: "seed", section: "Optimisation", meaning: "weights, readouts, data order, augmentation"),
        Field(key: "init_from", section: "Transfer", meaning: "initial weights (.safetensors or a repro checkpoint)"),
    ]

    /// Fields that matter only under another setting, beyond `RecipeConfig.noEffect`.
    static func hidden(_ key: String, _ c: RecipeConfig) -> Bool {
        if c.noEffect(key) != nil { return true }
        switch key {
        case "learn_temperature": return !c.learnTemperature
        case "deep_sup_weight": return !(c.headBackprop && c.localLossAt == "every-unit")
        case "ln_eps", "ln_affine": return c.interLayerNorm != "layernorm" && c.blockNorm != "layernorm"
        case "decoupled_norm": return c.interLayerNorm != "layernorm"
        case "fusion_head", "head_input": return c.pred != "fusion" && c.pred != "last"
        case "fusion_batch_norm": return !c.fusionBatchNorm
        case "fal": return c.localLoss != "covariance-goodness"
        case "color_jitter", "random_grayscale": return c.colorJitter == nil && c.randomGrayscale == 0
        case "warmup_epochs": return c.warmupEpochs == 0
        case "accumulate": return c.accumulate == 1
        case "block_norm": return c.blockNorm == "none"
        case "dropout": return c.dropout == 0
        default: return false
        }
    }

    /// The grouped text; `all` includes fields without effect and unset ones.
    public static func render(_ c: RecipeConfig, all: Bool) throws -> String {
        guard let values = try JSONSerialization.jsonObject(with: RecipeConfig.encoder.encode(c)) as? [String: Any] else {
            throw FFError("the config cannot be shown")
        }
        func text(_ v: Any) -> String {
            if let s = v as? String { return s }
            if let n = v as? NSNumber {
                let type = String(cString: n.objCType)
                if type == "c" { return n.boolValue ? "true" : "false" }  // JSON true/false
                if type == "d" || type == "f" { return String(format: "%.10g", n.doubleValue) }
                return "\(n)"
            }
            if let a = v as? [Any] { return "[" + a.map(text).joined(separator: ", ") + "]" }
            return "\(v)"
        }
        var lines = ["\(c.name): \(c.summary)", ""]
        var left = 0
        let width = (fields.map(\.key.count).max() ?? 20) + 2
        for section in sections {
            var rows: [String] = []
            for f in fields where f.section == section {
                let value = values[f.key]
                let unset = value == nil || value is NSNull
                if !all && (unset || hidden(f.key, c)) {
                    if !unset { left += 1 }
                    continue
                }
                let shown = unset ? "-" : text(value!)
                let why = c.noEffect(f.key).map { "  (no effect here: \($0))" } ?? ""
                rows.append("  " + TextTable.pad(f.key, width) + TextTable.pad(shown, 18) + "  " + f.meaning + why)
            }
            if !rows.isEmpty {
                lines.append(section)
                lines += rows
                lines.append("")
            }
        }
        let known = Set(fields.map(\.key)).union(["name", "summary"])  // the first line
        let unknown = values.keys.filter { !known.contains($0) }.sorted()
        if !unknown.isEmpty {
            lines.append("Other")
            for k in unknown { lines.append("  " + TextTable.pad(k, width) + text(values[k]!)) }
            lines.append("")
        }
        if !all && left > 0 { lines.append("\(left) fields without effect for this recipe are not shown (--all shows them).") }
        lines.append("Where each value comes from (paper, released code, [choice]): papers/\(c.paper)/README.md. "
            + "Change a field with --set key=value; --json prints the stored form.")
        return lines.joined(separator: "\n")
    }
}
