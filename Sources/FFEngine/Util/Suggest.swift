/// "Did you mean" for mistyped names: the candidates within a small edit distance
/// (insertions, deletions, substitutions, swaps of neighbours), nearest first, plus those
/// that contain the word or are contained in it.
public enum Suggest {
    static func distance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var d = Array(repeating: Array(repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { d[i][0] = i }
        for j in 0...b.count { d[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] { d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1) }
            }
        }
        return d[a.count][b.count]
    }

    public static func closest(_ word: String, among candidates: [String], limit: Int = 3) -> [String] {
        let w = Array(word.lowercased())
        let budget = max(2, w.count / 4)
        let scored = candidates.compactMap { c -> (Int, String)? in
            let lc = c.lowercased()
            if !word.isEmpty, lc.contains(word.lowercased()) || word.lowercased().contains(lc) { return (0, c) }
            let d = distance(w, Array(lc))
            return d <= budget ? (d, c) : nil
        }
        return scored.sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }.prefix(limit).map(\.1)
    }

    /// " Did you mean a or b?" or "".
    public static func hint(_ word: String, among candidates: [String]) -> String {
        let close = closest(word, among: candidates)
        return close.isEmpty ? "" : " Did you mean \(close.joined(separator: " or "))?"
    }
}
