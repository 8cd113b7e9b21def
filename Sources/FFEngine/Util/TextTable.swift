/// Fixed-width text tables for terminal output. (Foundation's `%-20@` ignores the width
/// on Linux, so columns are padded here.)
public enum TextTable {
    public static func pad(_ s: String, _ width: Int, right: Bool = false) -> String {
        let fill = String(repeating: " ", count: max(0, width - s.count))
        return right ? fill + s : s + fill
    }

    /// Rows of cells; each column as wide as its widest cell; columns listed in
    /// `rightAligned` (numbers) are right-aligned. The last column is not padded.
    public static func render(_ rows: [[String]], rightAligned: Set<Int> = [], gap: String = "  ") -> String {
        let cols = rows.map(\.count).max() ?? 0
        let widths = (0..<cols).map { c in rows.map { c < $0.count ? $0[c].count : 0 }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { c, cell in
                c == row.count - 1 && !rightAligned.contains(c) ? cell : pad(cell, widths[c], right: rightAligned.contains(c))
            }.joined(separator: gap)
        }.joined(separator: "\n")
    }
}
