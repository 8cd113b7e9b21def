import Foundation

/// Initialisation from pretrained weights (`repro run ... --init-from FILE`): a
/// `.safetensors` file (torchvision/timm names, e.g. a ResNet18 or MobileNetV3 state dict)
/// or one of our checkpoints. Tensors are matched by name; every shape is checked.
/// - loaded: same name and shape;
/// - skipped: in the file but not in the model (the 1000-class fc, num_batches_tracked), or
///   task-specific (the classifier head, local objectives) with another shape;
/// - missing: in the model but not in the file (keep their fresh initialisation: aux convs,
///   readouts, a new head).
/// A backbone tensor whose shape differs is an error: the file is for another architecture
/// or stem.
public struct TransferReport {
    public var source: URL
    public var loaded: [String] = []
    public var skipped: [(name: String, reason: String)] = []
    public var missing: [String] = []

    public var summary: String {
        var lines = ["init from \(source.path): loaded \(loaded.count) tensors, skipped \(skipped.count), "
            + "missing \(missing.count) (kept their initialisation)"]
        if !skipped.isEmpty {
            lines.append("  skipped: " + skipped.prefix(8).map { "\($0.name) (\($0.reason))" }.joined(separator: ", ")
                + (skipped.count > 8 ? ", ... \(skipped.count - 8) more" : ""))
        }
        if !missing.isEmpty {
            lines.append("  missing: " + missing.prefix(8).joined(separator: ", ")
                + (missing.count > 8 ? ", ... \(missing.count - 8) more" : ""))
        }
        return lines.joined(separator: "\n")
    }
}

public enum WeightTransfer {
    /// Named tensors of a source file, read lazily: name -> (shape, loader).
    struct Source {
        var tensors: [String: (shape: [Int], isFloat: Bool, load: () throws -> Tensor)] = [:]
    }

    static func open(_ url: URL) throws -> Source {
        try RegularFile.check(url, what: "--init-from", hint: "Give a .safetensors file or a checkpoint (.h5) written "
            + "by repro.")
        var src = Source()
        if url.pathExtension == "safetensors" {
            let st = try SafeTensors.read(url)
            for e in st.entries { src.tensors[e.name] = (e.shape, e.isFloat, { try st.tensor(e) }) }
        } else {
            let ckpt = try Checkpoint.read(from: url)
            for (name, t) in ckpt.tensors {
                for prefix in ["params/", "buffers/"] where name.hasPrefix(prefix) {
                    src.tensors[String(name.dropFirst(prefix.count))] = (t.shape, true, { t })
                }
            }
        }
        return src
    }

    @discardableResult
    public static func load(_ ctx: ComputeContext, _ url: URL, into net: Network) throws -> TransferReport {
        let src = try open(url)
        var report = TransferReport(source: url)
        let model = net.parameters.map { ($0.name, $0.value) } + net.buffers.map { ($0.name, $0.value) }
        let taskSpecific = Set((net.head.map { $0.parameters.map(\.name) + $0.buffers.map(\.name) } ?? [])
            + net.objectives.flatMap { $0.parameters.map(\.name) + $0.buffers.map(\.name) })
        var mismatched: [String] = []
        var pending: [(Tensor, () throws -> Tensor, String)] = []
        for (name, value) in model {
            guard let s = src.tensors[name] else {
                report.missing.append(name)
                continue
            }
            if !s.isFloat {
                mismatched.append("'\(name)' is not a floating-point tensor in the file")
            } else if s.shape != value.shape {
                if taskSpecific.contains(name) {
                    report.skipped.append((name, "shape \(s.shape) in the file, \(value.shape) here"))
                } else {
                    mismatched.append("'\(name)' has shape \(s.shape) in the file but \(value.shape) in this model")
                }
            } else {
                pending.append((value, s.load, name))
            }
        }
        if !mismatched.isEmpty {
            throw FFError(.mismatch, "--init-from \(url.path) does not fit \(net.config.arch) with input "
                + "\(net.inputShape): " + mismatched.prefix(6).joined(separator: "; ")
                + (mismatched.count > 6 ? "; and \(mismatched.count - 6) more" : "")
                + ". It was made for another architecture or stem (ResNet18 and MobileNetV3 published weights "
                + "need stem = imagenet: --set stem=imagenet).", file: url)
        }
        for (dst, load, name) in pending {
            let t = try load()
            if let bad = Ops.firstNonFinite(ctx, t) {
                throw FFError(.corrupt, "--init-from \(url.path): tensor '\(name)' holds a non-finite value at "
                    + "index \(bad); the file is damaged.", file: url)
            }
            dst.copy(from: t)
            report.loaded.append(name)
        }
        // Nothing matched: training would start from scratch while the user asked for weights.
        if pending.isEmpty {
            let names = src.tensors.keys.sorted()
            throw FFError(.mismatch, "--init-from \(url.path) has no tensor that this model (\(net.config.arch)) has "
                + (names.isEmpty ? "(the file holds no tensors)" : "(it holds \(names.count), e.g. "
                    + names.prefix(3).map { "'\($0)'" }.joined(separator: ", ") + "; this model's are named like '\(model.first?.0 ?? "")')")
                + ". Give weights of the same architecture, with torchvision names or from a repro checkpoint.", file: url)
        }
        let known = Set(model.map(\.0))
        for name in src.tensors.keys.sorted() where !known.contains(name) {
            report.skipped.append((name, name.hasSuffix("num_batches_tracked") ? "BatchNorm counter, unused"
                : "not in this model"))
        }
        return report
    }
}
