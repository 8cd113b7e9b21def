/// How the `blocks` config field groups a network's units into blocks.
public enum BlockPartition: Equatable {
    case perUnit
    case perResidualUnit
    case perStage
    case whole
    case counts([Int])
    /// Blocks of m consecutive units from the input side; the last holds the remainder.
    case groupsOf(Int)

    public static func parse(_ text: String) throws -> BlockPartition {
        switch text {
        case "per-unit", "per-layer": return .perUnit
        case "per-residual-unit": return .perResidualUnit
        case "per-stage": return .perStage
        case "whole": return .whole
        case _ where text.hasPrefix("groups-of-"):
            guard let m = Int(text.dropFirst("groups-of-".count)), m > 0 else {
                throw FFError("blocks = '\(text)': groups-of-M needs a positive unit count M, e.g. groups-of-2.")
            }
            return .groupsOf(m)
        default:
            let parts = text.split(separator: ",", omittingEmptySubsequences: false)
                .map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !parts.isEmpty, parts.allSatisfy({ ($0 ?? 0) > 0 }) else {
                throw FFError("blocks = '\(text)' is not one of per-unit, per-layer, per-residual-unit, per-stage, whole, "
                    + "groups-of-M, or a comma list of positive unit counts such as \"3,2,2\".")
            }
            return .counts(parts.map { $0! })
        }
    }

    /// Unit indices of each block, in order. A stem never forms a block alone except per unit.
    func groups(_ units: [Unit]) throws -> [[Int]] {
        var groups: [[Int]]
        switch self {
        case .perUnit:
            return units.map { [$0.index] }
        case .whole:
            return [units.map(\.index)]
        case .groupsOf(let m):
            return stride(from: 0, to: units.count, by: m).map { Array($0..<min($0 + m, units.count)) }
        case .perResidualUnit:
            groups = units.map { [$0.index] }
        case .perStage:
            groups = []
            for u in units {
                if let last = groups.last?.last, units[last].stage == u.stage {
                    groups[groups.count - 1].append(u.index)
                } else {
                    groups.append([u.index])
                }
            }
        case .counts(let counts):
            guard counts.reduce(0, +) == units.count else {
                throw FFError("blocks = \(counts.map(String.init).joined(separator: ",")) covers "
                    + "\(counts.reduce(0, +)) units, but the network has \(units.count): "
                    + units.map(\.label).joined(separator: ", ") + ".")
            }
            var start = 0
            return counts.map { n in
                defer { start += n }
                return Array(start..<start + n)
            }
        }
        // Merge stem-only groups into the group after them.
        var merged: [[Int]] = []
        var pending: [Int] = []
        for g in groups {
            if g.allSatisfy({ units[$0].isStem }) {
                pending += g
            } else {
                merged.append(pending + g)
                pending = []
            }
        }
        if !pending.isEmpty { merged.append(pending) }
        return merged
    }
}
