/// A block's local objective: class scores from the tap of the block's last unit (or of
/// every unit, for BP-DeepSup), trained with softmax cross-entropy against the label. The
/// objectives differ only in how the scores come from the map; each lives in its own file:
/// - `SpatialGoodness` (ASGE, DTG-FF): patch goodness, fixed random readout, temperature;
/// - `ClassGoodness` (SFF): aux conv to N maps, g_k = mean a_k^2, so the cross-entropy of g
///   is SFF's log-sum-exp loss;
/// - `CovarianceGoodness` (BiCovG): patch energies and covariance energies along K fixed
///   directions at pyramid levels, fixed random readout.
public protocol LocalObjective: AnyObject {
    var name: String { get }
    var parameters: [Parameter] { get }
    var buffers: [Buffer] { get }
    /// Class scores (n, N) of the map `y` (n, C, H, W); `cache` keeps what `backward` needs.
    func forward(_ y: Tensor, cache: Bool) -> Tensor
    /// dL/dy for dL/dscores, adding the objective's own parameter gradients.
    func backward(_ dscores: Tensor) -> Tensor
    func releaseCache()
    /// Forward multiply-accumulates per sample in conv layers (benchmark GFLOP/s).
    var forwardMACs: Int { get }
    /// A few characters for the network summary ("P4", "aux 1x1").
    var shortDescription: String { get }
    /// DTG-FF's temperature T, when the objective learns one.
    var temperature: Double? { get }
}

extension LocalObjective {
    public var forwardMACs: Int { 0 }
    public var temperature: Double? { nil }
}
