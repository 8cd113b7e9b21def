import FFIO
import Foundation

/// Writes a trained model for use outside a run: a weights-only ffrepro checkpoint (what
/// `repro eval` and `repro predict` read, without the optimizer state that only `--resume`
/// needs), or a safetensors file for PyTorch (tools/pytorch/ loads it).
public enum ModelExport {
    public enum Format: String, CaseIterable {
        case safetensors
        /// An ffrepro checkpoint holding parameters and buffers only.
        case h5
    }

    /// What was written.
    public struct Summary {
        public var tensors: Int
        public var values: Int
        public var bytes: Int
    }

    /// Loads `checkpoint` into a network of its own config (so only a consistent checkpoint
    /// is exported) and writes it to `out` in `format`, atomically.
    public static func export(checkpoint: URL, format: Format, to out: URL) throws -> Summary {
        let info = try RunCheckpoint.describe(checkpoint)
        let ctx = ComputeContext(threads: 1)
        let net = try Network(ctx, config: info.config, inputShape: info.inputShape, classes: info.classes)
        let trainer = Trainer(ctx, net: net)
        try RunCheckpoint.load(checkpoint, into: trainer)
        let named = net.parameters.map { ($0.name, $0.value) } + net.buffers.map { ($0.name, $0.value) }
        switch format {
        case .h5:
            var ckpt = try Checkpoint.read(from: checkpoint)
            ckpt.tensors = ckpt.tensors.filter { $0.0.hasPrefix("params/") || $0.0.hasPrefix("buffers/") }
            ckpt.uint64Arrays = []
            ckpt.attributes["exported_from"] = checkpoint.lastPathComponent
            ckpt.attributes["exported_from_sha256"] = try sha256(checkpoint)
            try ckpt.write(to: out)
        case .safetensors:
            try SafeTensors.write(named, metadata: try metadata(info, net: net, source: checkpoint), to: out)
        }
        let size = (try? FileManager.default.attributesOfItem(atPath: out.path)[.size] as? Int) ?? 0
        return Summary(tensors: named.count, values: named.reduce(0) { $0 + $1.1.count }, bytes: size)
    }

    /// The safetensors `__metadata__`: everything tools/pytorch needs to rebuild the model
    /// and its input pipeline (all values are strings, as the format requires).
    static func metadata(_ info: CheckpointInfo, net: Network, source: URL) throws -> [String: String] {
        func json<T: Encodable>(_ v: T) throws -> String { String(decoding: try JSONEncoder.sorted.encode(v), as: UTF8.self) }
        var m: [String: String] = [
            "format": "ffrepro-export",
            "format_version": "1",
            "config": info.config.json(),
            "input_shape": try json(info.inputShape),
            "class_names": try json(info.classNames),
            "epoch": "\(info.epoch)",
            // Best Pred's readout (1-based), chosen on validation during training.
            "best_readout": info.bestReadout.map { "\($0)" } ?? "",
            "source_checkpoint": source.lastPathComponent,
            "source_checkpoint_sha256": try sha256(source),
        ]
        if let d = info.dataset {
            struct D: Encodable {
                var name: String, image_size: [Int], channel_mean: [Double], channel_std: [Double], fingerprint: String
            }
            m["dataset"] = try json(D(name: d.name, image_size: d.imageSize, channel_mean: d.channelMean,
                                      channel_std: d.channelStd, fingerprint: d.fingerprint))
        }
        if Architectures.isVGGStack(info.config.arch) {
            let spec = try VGGSpec.resolve(info.config)
            m["arch_channels"] = try json(spec.channels)
            m["arch_pool_after"] = try json(spec.poolAfter)
        }
        return m
    }

    static func sha256(_ url: URL) throws -> String {
        var hex = [CChar](repeating: 0, count: 65)
        guard ffio_sha256_file(url.path, &hex) == 0 else {
            throw FFError(.io, "Cannot read \(url.path) to checksum it.", file: url)
        }
        return String(cString: hex)
    }
}

extension JSONEncoder {
    static var sorted: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }
}
