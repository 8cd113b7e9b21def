import FFIO
import Foundation

/// How pixel values become network inputs after cropping/resizing.
public enum InputScaling: Equatable {
    /// (pixel / 255 - mean[ch]) / std[ch] with the dataset's train-split statistics.
    case standardize
    /// pixel / 255.
    case unit
    /// pixel / 255, then divided by the sample's RMS over (C, H, W) plus `eps`: no centring
    /// (the ASGE authors' code scales its input this way).
    case rms(eps: Float)
}

/// torchvision's ColorJitter(brightness, contrast, saturation, hue) followed by
/// RandomGrayscale(p), drawn per sample (training only).
public struct ColorAugmentation: Equatable {
    public var brightness: Double
    public var contrast: Double
    public var saturation: Double
    public var hue: Double
    public var grayscale: Double

    public init(brightness: Double = 0, contrast: Double = 0, saturation: Double = 0, hue: Double = 0, grayscale: Double = 0) {
        self.brightness = brightness
        self.contrast = contrast
        self.saturation = saturation
        self.hue = hue
        self.grayscale = grayscale
    }

    /// The order of the four adjustments (a random permutation, as torchvision draws it),
    /// their factors (1 or a hue shift of 0 = unchanged) and whether to gray the image.
    /// The order of draws is part of the reproducibility format: do not reorder.
    func draw(_ rng: inout SeededRandom) -> (order: [Int32], factors: [Float], gray: Bool) {
        let order = rng.permutation(4).map(Int32.init)
        func factor(_ spread: Double) -> Float {
            spread > 0 ? Float(max(0, 1 - spread) + (1 + spread - max(0, 1 - spread)) * rng.unit()) : 1
        }
        let b = factor(brightness), c = factor(contrast), s = factor(saturation)
        let h: Float = hue > 0 ? Float(-hue + 2 * hue * rng.unit()) : 0
        let gray = grayscale > 0 && rng.unit() < grayscale
        return (order, [b, c, s, h], gray)
    }
}

/// One stored HWC uint8 image -> one float CHW network input: optional resize of the
/// stored image (the antialiased resampler of the converter; bilinear when enlarging),
/// the crop/flip/resample of an `Augmentation`, optional colour augmentation, and the
/// input scaling. The loader uses it per sample and `repro predict` per file, so both
/// produce the same inputs.
struct SampleRenderer {
    /// [H, W, C] of the stored images.
    let stored: [Int]
    /// Square side the stored image is resized to before augmentation (nil: unchanged).
    let resize: Int?
    let augmentation: Augmentation
    let color: ColorAugmentation?
    let scaling: InputScaling
    /// Per-channel affine of `.standardize` (identity scale 1/255 otherwise).
    let scale: [Float], bias: [Float]
    /// pixel / 255: what colour work starts from.
    let unitScale: [Float], zeroBias: [Float]
    /// (height, width) the augmentation sees: the resized or the stored image.
    let augmentedInput: (Int, Int)
    /// [C, H, W] of the output.
    let outputShape: [Int]

    init(stored: [Int], resize: Int?, augmentation: Augmentation, color: ColorAugmentation?, scaling: InputScaling,
         mean: [Double], std: [Double]) {
        self.stored = stored
        self.resize = resize == nil || (resize == stored[0] && resize == stored[1]) ? nil : resize
        self.augmentation = augmentation
        self.color = color
        self.scaling = scaling
        let c = stored[2]
        unitScale = [Float](repeating: 1 / 255, count: c)
        zeroBias = [Float](repeating: 0, count: c)
        (scale, bias) = scaling == .standardize ? ShardLoader.normalization(mean: mean, std: std) : (unitScale, zeroBias)
        let (h, w) = self.resize.map { ($0, $0) } ?? (stored[0], stored[1])
        augmentedInput = (h, w)
        let (oh, ow) = augmentation.outputSize(height: h, width: w)
        outputShape = [c, oh, ow]
    }

    /// Renders one image; the random draws come from `rng` (augmentation first, then colour).
    /// False only if resampling could not allocate its buffers.
    func render(_ src: UnsafePointer<UInt8>, rng: inout SeededRandom, into dst: UnsafeMutablePointer<Float>) -> Bool {
        let c = stored[2]
        var resized: [UInt8] = []
        var image = src
        let (h, w) = augmentedInput
        if let r = resize {
            resized = [UInt8](repeating: 0, count: r * r * c)
            let ok = resized.withUnsafeMutableBufferPointer {
                ffio_resample(src, Int32(stored[1]), Int32(stored[0]), Int32(c), 0, 0, Double(stored[1]), Double(stored[0]),
                              $0.baseAddress!, Int32(r), Int32(r), 0) == 0
            }
            if !ok { return false }
        }
        return resized.withUnsafeBufferPointer { buf -> Bool in
            if resize != nil { image = buf.baseAddress! }
            let op = augmentation.draw(height: h, width: w, rng: &rng)
            let (oh, ow) = (outputShape[1], outputShape[2])
            // Without colour work the scaling's affine folds into the pixel kernel; colour work
            // needs values in [0, 1] first.
            let direct = color == nil
            let (sc, bi) = direct ? (scale, bias) : (unitScale, zeroBias)
            let ok = sc.withUnsafeBufferPointer { s in
                bi.withUnsafeBufferPointer { b in
                    op.render(image, height: h, width: w, channels: c, outHeight: oh, outWidth: ow,
                              scale: s.baseAddress!, bias: b.baseAddress!, into: dst)
                }
            }
            if !ok { return false }
            if let color {
                let d = color.draw(&rng)
                d.order.withUnsafeBufferPointer { o in
                    d.factors.withUnsafeBufferPointer { f in
                        ffio_color_jitter(dst, Int32(c), Int32(oh), Int32(ow), o.baseAddress!, f.baseAddress!)
                    }
                }
                if d.gray { ffio_grayscale(dst, Int32(c), Int32(oh), Int32(ow)) }
            }
            switch scaling {
            case .standardize:
                if !direct {
                    ffio_affine_channels(dst, Int32(c), Int32(oh), Int32(ow), scale.map { $0 * 255 }, bias)
                }
            case .unit: break
            case let .rms(eps): ffio_rms_scale(dst, Int64(c * oh * ow), eps)
            }
            return true
        }
    }
}
