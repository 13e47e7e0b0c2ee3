// Image -> input tensor as the manifest's `preprocessing` says, computing what edgeexport's
// `--preprocess` path computes with Pillow (same fixed-point bilinear resize, same center crop,
// same float32 arithmetic); the Kotlin core does the same, both checked on the shared vectors.
import Foundation
#if canImport(CoreGraphics)
import CoreGraphics
#endif

/// The manifest's `preprocessing` (bundle contract v1): decode to `color` ("RGB" | "L"), resize
/// the shorter side to resize.shorterSide (bilinear) when present, center-crop crop.height x
/// crop.width, resize to size when the crop differs, x = (pixel / scale - mean[c]) / std[c],
/// arrange in `layout` (the artifact's), quantize when the input is int8. valueRange is x's
/// per-channel [min, max]. Decoded with .convertFromSnakeCase; other keys (formula...) are text.
public struct Preprocessing: Codable {
    public struct Size: Codable { public let height: Int; public let width: Int }
    public struct Crop: Codable { public let height: Int; public let width: Int; public let position: String }
    public struct Resize: Codable { public let shorterSide: Int; public let interpolation: String }

    public let input: String
    public let spec: String
    public let color: String
    public let scale: Double
    public let mean: [Double]
    public let std: [Double]
    public let valueRange: [[Double]]
    public let resize: Resize?
    public let crop: Crop
    public let size: Size
    public let layout: String
    public let dtype: String

    public var channels: Int { color == "L" ? 1 : 3 }

    /// What this reader does not implement is refused, not approximated.
    public func check() throws {
        guard color == "RGB" || color == "L" else { throw BundleError("preprocessing.color '\(color)' is not RGB or L") }
        guard layout == "NCHW" || layout == "NHWC" else { throw BundleError("preprocessing.layout '\(layout)' is not NCHW or NHWC") }
        guard resize.map({ $0.interpolation == "bilinear" }) ?? true, crop.position == "center" else {
            throw BundleError("preprocessing: only bilinear resize and center crop are implemented")
        }
        guard mean.count == channels, std.count == channels else {
            throw BundleError("preprocessing: mean/std need \(channels) values for \(color)")
        }
    }

    /// Pixels to the tensor `input` (the inputs[] entry named by `self.input`) takes: its shape
    /// and layout, int8 codes when it is quantized.
    public func tensor(_ image: PixelImage, input: TensorSpec) throws -> Tensor {
        try check()
        guard input.name == self.input, input.layout == layout else {
            throw BundleError("preprocessing is for input '\(self.input)' (\(layout)), not '\(input.name)' (\(input.layout))")
        }
        let shape = input.shape.values.map { $0 < 0 ? 1 : $0 }
        guard shape.count == 4 else { throw BundleError("input '\(input.name)' \(shape) is not an image batch") }
        let nchw = layout == "NCHW"
        let (h, w, c) = nchw ? (shape[2], shape[3], shape[1]) : (shape[1], shape[2], shape[3])
        guard c == channels, h == size.height, w == size.width else {
            throw BundleError("input '\(input.name)' is \(h)x\(w)x\(c), preprocessing gives \(size.height)x\(size.width)x\(channels)")
        }
        let src = channels == 1 && image.channels == 3 ? image.gray() : image
        let x = normalize(resizeAndCrop(src), nchw: nchw)
        guard let q = input.quantization.params else { return Tensor.float32(shape: shape, values: x) }
        // q = clamp(round(x / scale) + zero_point, -128, 127), round half to even as numpy
        let codes: [UInt8] = x.map { v in
            let r = (Double(v) / q.scale).rounded(.toNearestOrEven) + Double(q.zeroPoint)
            return UInt8(bitPattern: Int8(max(-128.0, min(127.0, r))))
        }
        return try Tensor(shape: shape, dtype: .int8, data: Data(codes))
    }

    /// Resize (shorter side), center crop, then resize to the model's size.
    public func resizeAndCrop(_ src: PixelImage) -> PixelImage {
        var im = src
        if let r = resize { // Python: s = resize / min(w, h); round() is half-to-even
            let s = Double(r.shorterSide) / Double(min(im.width, im.height))
            im = im.resizeBilinear(width: max(1, Int((Double(im.width) * s).rounded(.toNearestOrEven))),
                                   height: max(1, Int((Double(im.height) * s).rounded(.toNearestOrEven))))
        }
        let (ch, cw) = (crop.height, crop.width)
        if (im.width != cw || im.height != ch) && im.width >= cw && im.height >= ch {
            im = im.crop(left: (im.width - cw) / 2, top: (im.height - ch) / 2, width: cw, height: ch)
        }
        if im.width != size.width || im.height != size.height { im = im.resizeBilinear(width: size.width, height: size.height) }
        return im
    }

    /// float32 in Python's order: pixel / scale, then (x - mean) / std.
    public func normalize(_ im: PixelImage, nchw: Bool) -> [Float] {
        let c = im.channels, plane = im.width * im.height
        let scale = Float(self.scale)
        let m = mean.map { Float($0) }, s = std.map { Float($0) }
        var out = [Float](repeating: 0, count: plane * c)
        for p in 0..<plane {
            for k in 0..<c {
                out[nchw ? k * plane + p : p * c + k] = (Float(im.pixels[p * c + k]) / scale - m[k]) / s[k]
            }
        }
        return out
    }
}

/// 8-bit image, channels interleaved (RGB or L).
public struct PixelImage {
    public let width: Int, height: Int, channels: Int
    public let pixels: [Int32]

    public init(width: Int, height: Int, channels: Int, pixels: [Int32]) {
        self.width = width; self.height = height; self.channels = channels; self.pixels = pixels
    }

    /// From RGB bytes, row-major (what the shared vectors hold).
    public init(rgb: [UInt8], width: Int, height: Int) {
        self.init(width: width, height: height, channels: 3, pixels: rgb.map { Int32($0) })
    }

    #if canImport(CoreGraphics)
    /// Draws the image into 8-bit sRGB RGBA (alpha dropped; color-managed by CoreGraphics).
    public init(cgImage: CGImage) throws {
        let w = cgImage.width, h = cgImage.height
        var rgba = [UInt8](repeating: 0, count: w * h * 4)
        let drawn: Bool = rgba.withUnsafeMutableBytes { buf in
            guard let space = CGColorSpace(name: CGColorSpace.sRGB),
                  let ctx = CGContext(data: buf.baseAddress, width: w, height: h, bitsPerComponent: 8, bytesPerRow: w * 4,
                                      space: space, bitmapInfo: CGImageAlphaInfo.noneSkipLast.rawValue) else { return false }
            ctx.draw(cgImage, in: CGRect(x: 0, y: 0, width: w, height: h))
            return true
        }
        guard drawn else { throw BundleError("cannot draw the image into an 8-bit RGB buffer") }
        var px = [Int32](repeating: 0, count: w * h * 3)
        for i in 0..<(w * h) {
            px[3 * i] = Int32(rgba[4 * i]); px[3 * i + 1] = Int32(rgba[4 * i + 1]); px[3 * i + 2] = Int32(rgba[4 * i + 2])
        }
        self.init(width: w, height: h, channels: 3, pixels: px)
    }
    #endif

    /// Pillow's convert("L"): ITU-R 601-2 luma in 16-bit fixed point.
    public func gray() -> PixelImage {
        var out = [Int32](repeating: 0, count: width * height)
        for i in 0..<(width * height) {
            out[i] = (pixels[3 * i] * 19595 + pixels[3 * i + 1] * 38470 + pixels[3 * i + 2] * 7471 + 0x8000) >> 16
        }
        return PixelImage(width: width, height: height, channels: 1, pixels: out)
    }

    public func crop(left: Int, top: Int, width w: Int, height h: Int) -> PixelImage {
        var out = [Int32]()
        out.reserveCapacity(w * h * channels)
        for y in 0..<h {
            let start = ((top + y) * width + left) * channels
            out.append(contentsOf: pixels[start..<(start + w * channels)])
        }
        return PixelImage(width: w, height: h, channels: channels, pixels: out)
    }

    /// Pillow's Image.resize(..., BILINEAR) for 8-bit images: triangle filter widened by the
    /// downscale factor, 22-bit fixed-point coefficients, horizontal then vertical pass.
    public func resizeBilinear(width ow: Int, height oh: Int) -> PixelImage {
        var im = self
        if ow != width { im = im.pass(ow, horizontal: true) }
        if oh != height { im = im.pass(oh, horizontal: false) }
        return im
    }

    static let precisionBits: Int32 = 32 - 8 - 2

    private func pass(_ outSize: Int, horizontal: Bool) -> PixelImage {
        let inSize = horizontal ? width : height
        let (bounds, kk, ksize) = PixelImage.coefficients(inSize: inSize, outSize: outSize)
        let ow = horizontal ? outSize : width, oh = horizontal ? height : outSize
        var out = [Int32](repeating: 0, count: ow * oh * channels)
        for y in 0..<oh {
            for x in 0..<ow {
                let o = horizontal ? x : y
                let lo = bounds[2 * o], n = bounds[2 * o + 1]
                for c in 0..<channels {
                    var ss: Int32 = 1 << (PixelImage.precisionBits - 1)
                    for i in 0..<n {
                        let src = horizontal ? (y * width + lo + i) : ((lo + i) * width + x)
                        ss &+= pixels[src * channels + c] &* kk[o * ksize + i]
                    }
                    out[(y * ow + x) * channels + c] = ss >= (1 << (PixelImage.precisionBits + 8)) ? 255 : (ss <= 0 ? 0 : ss >> PixelImage.precisionBits)
                }
            }
        }
        return PixelImage(width: ow, height: oh, channels: channels, pixels: out)
    }

    private static func coefficients(inSize: Int, outSize: Int) -> ([Int], [Int32], Int) {
        let scale = Double(inSize) / Double(outSize)
        let filterscale = max(scale, 1.0)
        let support = filterscale
        let ksize = Int(support.rounded(.up)) * 2 + 1
        var bounds = [Int](repeating: 0, count: outSize * 2)
        var kk = [Int32](repeating: 0, count: outSize * ksize)
        var k = [Double](repeating: 0, count: ksize)
        let one = Double(1 << precisionBits)
        for xx in 0..<outSize {
            let center = (Double(xx) + 0.5) * scale
            let ss = 1.0 / filterscale
            let xmin = max(Int(center - support + 0.5), 0)   // Int() truncates toward zero, as C's (int)
            let xmax = min(Int(center + support + 0.5), inSize) - xmin
            var ww = 0.0
            for x in 0..<max(xmax, 0) {
                let t = abs((Double(x + xmin) - center + 0.5) * ss)
                k[x] = t < 1 ? 1 - t : 0
                ww += k[x]
            }
            for x in 0..<ksize {
                let v = x < xmax ? (ww != 0 ? k[x] / ww : k[x]) : 0
                kk[xx * ksize + x] = Int32(v < 0 ? -0.5 + v * one : 0.5 + v * one)
            }
            bounds[2 * xx] = xmin
            bounds[2 * xx + 1] = xmax
        }
        return (bounds, kk, ksize)
    }
}
