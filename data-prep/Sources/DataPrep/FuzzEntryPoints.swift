import FFEngine
import Foundation

/// The parsers of data-prep, callable on arbitrary bytes (fuzz/ drives them). Each returns
/// normally or throws an FFError; anything else (a trap, a crash) is a bug.
public enum DataPrepFuzz {
    /// IDX headers and bodies, as image (rank 3) and label (rank 1) files.
    public static func idx(_ bytes: [UInt8]) {
        let url = URL(fileURLWithPath: "fuzz.idx")
        _ = try? IDXSource.parse(bytes, rank: 3, url: url)
        _ = try? IDXSource.parse(bytes, rank: 1, url: url)
    }

    /// tar archives in memory.
    public static func tar(_ bytes: [UInt8]) {
        for e in Tar.entries(bytes) ?? [] { _ = e.data.count }
    }

    /// A (gzip-compressed) tar archive on disk read as a CIFAR source, both variants.
    public static func cifar(archive: URL) {
        for hundred in [false, true] {
            let wanted = hundred ? ["train.bin", "test.bin", "fine_label_names.txt", "coarse_label_names.txt"]
                : (1...5).map { "data_batch_\($0).bin" } + ["test_batch.bin", "batches.meta.txt"]
            guard let files = try? CIFARSource.gather(archive, wanted: wanted, dataset: "cifar", expected: "") else { continue }
            if let (src, _) = try? CIFARSource.parse(files, hundred: hundred, source: archive), src.count > 0 {
                var px = [UInt8](repeating: 0, count: 3072)
                _ = src.decode(src.count - 1, into: &px)
                _ = src.name(of: src.count - 1)
            }
        }
    }

    /// Tiny-ImageNet annotation / class list text, through the same checks as a conversion.
    public static func classList(_ text: URL) {
        _ = try? ImageTree.readClassList(text, what: "fuzz list")
    }
}
