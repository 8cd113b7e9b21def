import Foundation

/// Minimal reader of (ustar / GNU) tar archives held in memory: regular files only.
enum Tar {
    struct Entry {
        let name: String
        let data: ArraySlice<UInt8>
    }

    static func octal(_ b: ArraySlice<UInt8>) -> Int {
        var v = 0
        for c in b {
            if c == 0 || c == 0x20 { if v > 0 { break } else { continue } }
            guard c >= 0x30 && c <= 0x37 else { break }
            v = v * 8 + Int(c - 0x30)
        }
        return v
    }

    static func string(_ b: ArraySlice<UInt8>) -> String {
        String(decoding: b.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// Entries in archive order; nil if the bytes are not a tar archive.
    static func entries(_ bytes: [UInt8]) -> [Entry]? {
        var out: [Entry] = []
        var pos = 0
        var longName: String? = nil
        while pos + 512 <= bytes.count {
            let h = bytes[pos..<pos + 512]
            if h.allSatisfy({ $0 == 0 }) { break }
            // Header checksum: sum of the header with its checksum field read as spaces.
            let stored = octal(bytes[pos + 148..<pos + 156])
            var sum = 0
            for (i, c) in h.enumerated() { sum += (148..<156).contains(i) ? 32 : Int(c) }
            guard stored == sum else { return out.isEmpty ? nil : out }
            let size = octal(bytes[pos + 124..<pos + 136])
            let type = bytes[pos + 156]
            var name = string(bytes[pos..<pos + 100])
            let magic = string(bytes[pos + 257..<pos + 263])
            if magic.hasPrefix("ustar") {
                let prefix = string(bytes[pos + 345..<pos + 500])
                if !prefix.isEmpty { name = prefix + "/" + name }
            }
            let body = pos + 512
            guard body + size <= bytes.count else { return out.isEmpty ? nil : out }
            if type == UInt8(ascii: "L") {
                longName = string(bytes[body..<body + size])
            } else {
                if type == 0 || type == UInt8(ascii: "0") {
                    out.append(Entry(name: longName ?? name, data: bytes[body..<body + size]))
                }
                longName = nil
            }
            pos = body + (size + 511) / 512 * 512
        }
        return out
    }
}
