import FFIO
import Foundation

/// Per-sample image transform applied by `ShardLoader` to the stored uint8 images.
/// Random choices are drawn from a generator seeded by (loader seed, epoch, sample index).
public enum Augmentation: Equatable {
    /// The stored image as is.
    case none
    /// Zero-pad by `padding` on every side, take a random size x size window, and mirror it
    /// horizontally with probability 1/2 if `flip` (the CIFAR recipe: 32, 4, true).
    case randomCrop(size: Int, padding: Int, flip: Bool)
    /// torchvision's RandomResizedCrop: a random window with area fraction in
    /// [scaleMin, 1] and aspect ratio in [3/4, 4/3], resized (antialiased) to size x size;
    /// mirrored with probability 1/2 if `flip`.
    case randomResizedCrop(size: Int, scaleMin: Double, flip: Bool)
    /// Evaluation transform: resize the shorter side to round(size / 0.875) and crop the
    /// center size x size (ImageNet's "resize 256, center 224" when size is 224).
    case centerCrop(size: Int)
    /// Evaluation transform with explicit sizes: shorter side to `resize`, center `crop`.
    case resizeCenterCrop(resize: Int, crop: Int)

    /// (height, width) of the produced images for stored images of h x w.
    public func outputSize(height h: Int, width w: Int) -> (Int, Int) {
        switch self {
        case .none: return (h, w)
        case let .randomCrop(size, _, _), let .randomResizedCrop(size, _, _), let .centerCrop(size):
            return (size, size)
        case let .resizeCenterCrop(_, crop): return (crop, crop)
        }
    }

    /// Throws if the transform cannot be applied to stored images of h x w.
    func check(height h: Int, width w: Int, directory: URL) throws {
        func fail(_ why: String) -> FFError {
            FFError(.invalidArgument, "Augmentation \(self) cannot be used with the \(h)x\(w) images in "
                + "\(directory.path): \(why).", file: directory)
        }
        switch self {
        case .none: break
        case let .randomCrop(size, padding, _):
            if size <= 0 || padding < 0 { throw fail("size must be positive and padding non-negative") }
            if size > min(h, w) + 2 * padding { throw fail("the crop is larger than the padded image") }
        case let .randomResizedCrop(size, scaleMin, _):
            if size <= 0 || !(scaleMin > 0 && scaleMin <= 1) { throw fail("size must be positive and scaleMin in (0, 1]") }
        case let .centerCrop(size):
            if size <= 0 { throw fail("size must be positive") }
        case let .resizeCenterCrop(resize, crop):
            if crop <= 0 || resize < crop { throw fail("crop must be positive and at most resize") }
        }
    }
}

extension Augmentation {
    /// The deterministic transform for evaluating a model trained with `self`: random crops
    /// become the whole image resized to the crop size (the identity for the usual
    /// crop-with-padding at the stored size), random-resized crops become `centerCrop`
    /// (resize size/0.875, center crop), evaluation transforms stay as they are.
    public var evaluation: Augmentation {
        switch self {
        case .none, .centerCrop, .resizeCenterCrop: return self
        case let .randomCrop(size, _, _): return .resizeCenterCrop(resize: size, crop: size)
        case let .randomResizedCrop(size, _, _): return .centerCrop(size: size)
        }
    }
}

/// What the pixel kernel does for one sample.
enum PixelOp: Equatable {
    /// Window at (top, left) of the stored image (may extend past it: zero padding).
    case crop(top: Int, left: Int, flip: Bool)
    /// Source rectangle resampled to the output size.
    case resample(x0: Double, y0: Double, width: Double, height: Double, flip: Bool)
}

extension PixelOp {
    /// One stored HWC uint8 image -> normalized CHW floats (pixel * scale[ch] + bias[ch]):
    /// what the loader does per sample, and `repro predict` per image file.
    /// False only if resampling could not allocate its buffers (the output is then unset).
    @discardableResult
    func render(_ src: UnsafePointer<UInt8>, height h: Int, width w: Int, channels c: Int, outHeight oh: Int, outWidth ow: Int,
                scale: UnsafePointer<Float>, bias: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>) -> Bool {
        switch self {
        case let .crop(top, left, flip):
            ffio_crop_normalize(src, Int32(h), Int32(w), Int32(c), Int32(top), Int32(left), Int32(oh), Int32(ow),
                                flip ? 1 : 0, scale, bias, dst)
            return true
        case let .resample(x0, y0, rw, rh, flip):
            return ffio_resample_normalize(src, Int32(h), Int32(w), Int32(c), x0, y0, rw, rh, Int32(oh), Int32(ow),
                                           flip ? 1 : 0, scale, bias, dst) == 0
        }
    }
}

extension Augmentation {
    /// Draws the transform of one sample. The order of draws is part of the format of
    /// reproducibility: do not reorder.
    func draw(height h: Int, width w: Int, rng: inout SeededRandom) -> PixelOp {
        switch self {
        case .none:
            return .crop(top: 0, left: 0, flip: false)
        case let .randomCrop(size, padding, flip):
            let top = rng.below(h + 2 * padding - size + 1) - padding
            let left = rng.below(w + 2 * padding - size + 1) - padding
            let f = flip && rng.unit() < 0.5
            return .crop(top: top, left: left, flip: f)
        case let .randomResizedCrop(_, scaleMin, flip):
            let (x0, y0, cw, ch) = Augmentation.resizedCropWindow(h: h, w: w, scaleMin: scaleMin, rng: &rng)
            let f = flip && rng.unit() < 0.5
            return .resample(x0: Double(x0), y0: Double(y0), width: Double(cw), height: Double(ch), flip: f)
        case let .centerCrop(size):
            return Augmentation.resizeCenterCrop(resize: Int((Double(size) / 0.875).rounded()), crop: size).draw(height: h, width: w, rng: &rng)
        case let .resizeCenterCrop(resize, crop):
            let short = min(h, w)
            if short == resize {
                return .crop(top: (h - crop) / 2, left: (w - crop) / 2, flip: false)
            }
            // Same geometry as the converter: resize (longer side rounded), integer offset.
            let rh = h <= w ? resize : Int((Double(h) * Double(resize) / Double(w)).rounded())
            let rw = h <= w ? Int((Double(w) * Double(resize) / Double(h)).rounded()) : resize
            let sy = Double(h) / Double(rh), sx = Double(w) / Double(rw)
            return .resample(x0: Double((rw - crop) / 2) * sx, y0: Double((rh - crop) / 2) * sy,
                             width: Double(crop) * sx, height: Double(crop) * sy, flip: false)
        }
    }

    /// torchvision's RandomResizedCrop window: 10 tries of a random area and log-uniform
    /// aspect ratio, then a center crop clamped to the ratio range.
    static func resizedCropWindow(h: Int, w: Int, scaleMin: Double, rng: inout SeededRandom) -> (Int, Int, Int, Int) {
        let area = Double(h * w)
        let logLo = log(3.0 / 4.0), logHi = log(4.0 / 3.0)
        for _ in 0..<10 {
            let target = area * (scaleMin + (1 - scaleMin) * rng.unit())
            let ratio = exp(logLo + (logHi - logLo) * rng.unit())
            let cw = Int((target * ratio).squareRoot().rounded())
            let ch = Int((target / ratio).squareRoot().rounded())
            if cw > 0 && ch > 0 && cw <= w && ch <= h {
                let y0 = rng.below(h - ch + 1), x0 = rng.below(w - cw + 1)
                return (x0, y0, cw, ch)
            }
        }
        let inRatio = Double(w) / Double(h)
        var cw = w, ch = h
        if inRatio < 3.0 / 4.0 {
            ch = Int((Double(w) / (3.0 / 4.0)).rounded())
        } else if inRatio > 4.0 / 3.0 {
            cw = Int((Double(h) * (4.0 / 3.0)).rounded())
        }
        return ((w - cw) / 2, (h - ch) / 2, cw, ch)
    }
}

/// How much of the shard data the loader checks when it opens a split.
public enum ChecksumCheck {
    /// SHA-256 of every shard if the split's files total at most 2 GiB (about a second per
    /// GiB), otherwise only file sizes (use `repro prep check` to verify large datasets).
    case auto
    case always
    case sizesOnly
}

/// Options of `ShardLoader`.
public struct LoaderOptions {
    public var seed: UInt64
    /// Shuffle each epoch (a different order every epoch, the same across runs).
    public var shuffle: Bool
    public var augmentation: Augmentation
    /// Use only the first N samples of a fixed permutation of the split (seeded by
    /// `subsetSeed`, or `seed` if nil); the same N always gives the same samples.
    public var subset: Int?
    /// Drop the last incomplete batch.
    public var dropLast: Bool
    /// Label dataset: "labels", or "coarse_labels" for CIFAR-100's superclasses.
    public var labelKey: String
    /// Batches prepared ahead by the background thread (0: prepare on the caller's thread).
    public var prefetch: Int
    /// Normalize with the dataset's stored mean/std; if false, pixels are scaled to [0, 1].
    public var normalize: Bool
    public var subsetSeed: UInt64?
    public var checksums: ChecksumCheck
    /// Splits up to this many bytes are held in memory, larger ones are read from the
    /// shards per batch. nil: a quarter of physical memory, at most 8 GiB.
    public var memoryLimit: Int?
    /// Square side every stored image is resized to before augmentation (nil: as stored).
    public var resize: Int?
    /// Colour augmentation after the crop (training loaders only).
    public var color: ColorAugmentation?
    /// How pixels become inputs; nil follows `normalize` (standardize or unit).
    public var scaling: InputScaling?

    /// The scaling in effect.
    public var inputScaling: InputScaling { scaling ?? (normalize ? .standardize : .unit) }

    public init(seed: UInt64 = 0, shuffle: Bool = true, augmentation: Augmentation = .none, subset: Int? = nil,
                dropLast: Bool = false, labelKey: String = "labels", prefetch: Int = 2, normalize: Bool = true,
                subsetSeed: UInt64? = nil, checksums: ChecksumCheck = .auto, memoryLimit: Int? = nil,
                resize: Int? = nil, color: ColorAugmentation? = nil, scaling: InputScaling? = nil) {
        self.seed = seed
        self.shuffle = shuffle
        self.augmentation = augmentation
        self.subset = subset
        self.dropLast = dropLast
        self.labelKey = labelKey
        self.prefetch = prefetch
        self.normalize = normalize
        self.subsetSeed = subsetSeed
        self.checksums = checksums
        self.memoryLimit = memoryLimit
        self.resize = resize
        self.color = color
        self.scaling = scaling
    }
}
