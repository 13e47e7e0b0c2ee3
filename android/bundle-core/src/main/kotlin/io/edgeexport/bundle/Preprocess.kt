// Image -> input tensor as the manifest's `preprocessing` says, computing what edgeexport's
// `--preprocess` path computes with Pillow: same resize (Pillow's fixed-point bilinear filter),
// same center crop, same float32 arithmetic, so the tensor matches Python's to float rounding.
package io.edgeexport.bundle

import org.json.JSONObject

/**
 * The manifest's `preprocessing` (bundle contract v1): decode to [color] ("RGB" | "L"), resize the
 * shorter side to [resizeShorterSide] (bilinear) when given, center-crop [cropHeight] x
 * [cropWidth], resize to [height] x [width] when the crop differs, x = (pixel / [scale] -
 * mean[c]) / std[c], arrange in [layout] (the artifact's: "NCHW" | "NHWC"), quantize when the
 * input is int8. [valueRange] is x's per-channel [min, max] (after normalization).
 */
data class Preprocessing(
    val input: String,
    val color: String,
    val scale: Double,
    val mean: DoubleArray,
    val std: DoubleArray,
    val valueRange: List<DoubleArray>,
    val resizeShorterSide: Int?,
    val cropHeight: Int,
    val cropWidth: Int,
    val height: Int,
    val width: Int,
    val layout: String,
    val dtype: String,
) {
    val channels: Int get() = if (color == "L") 1 else 3

    companion object {
        fun fromJson(o: JSONObject): Preprocessing {
            val crop = o.getJSONObject("crop")
            val size = o.getJSONObject("size")
            val resize = o.optJSONObject("resize")
            val vr = o.getJSONArray("value_range")
            val p = Preprocessing(
                o.getString("input"), o.getString("color"), o.getDouble("scale"),
                Manifest.doubles(o.getJSONArray("mean")), Manifest.doubles(o.getJSONArray("std")),
                List(vr.length()) { Manifest.doubles(vr.getJSONArray(it)) },
                resize?.getInt("shorter_side"), crop.getInt("height"), crop.getInt("width"),
                size.getInt("height"), size.getInt("width"), o.getString("layout"), o.getString("dtype"),
            )
            // what this reader does not implement is refused, not approximated
            if (p.color !in listOf("RGB", "L")) throw BundleException("preprocessing.color '${p.color}' is not RGB or L")
            if (p.layout !in listOf("NCHW", "NHWC")) throw BundleException("preprocessing.layout '${p.layout}' is not NCHW or NHWC")
            if (resize != null && resize.getString("interpolation") != "bilinear") {
                throw BundleException("preprocessing.resize.interpolation '${resize.getString("interpolation")}' is not bilinear")
            }
            if (crop.getString("position") != "center") throw BundleException("preprocessing.crop.position '${crop.getString("position")}' is not center")
            if (p.mean.size != p.channels || p.std.size != p.channels) {
                throw BundleException("preprocessing: mean/std need ${p.channels} values for ${p.color}")
            }
            return p
        }
    }

    /**
     * [argb] holds [width] x [height] pixels as Android's Bitmap.getPixels gives them
     * (0xAARRGGBB, row-major; alpha ignored). Returns the tensor [input] (the manifest's
     * inputs[] entry named by `preprocessing.input`) takes: its shape and layout, int8 codes when
     * the input is quantized.
     */
    fun toTensor(argb: IntArray, width: Int, height: Int, input: TensorSpec): Tensor {
        if (input.name != this.input) throw BundleException("preprocessing is for input '${this.input}', not '${input.name}'")
        if (input.layout != layout) throw BundleException("input '${input.name}' is ${input.layout}, preprocessing says $layout")
        val img = PixelImage.fromArgb(argb, width, height, channels == 1)
        val nchw = layout == "NCHW"
        val shape = IntArray(input.shape.size) { if (input.shape[it] < 0) 1 else input.shape[it] }
        if (shape.size != 4) {
            throw BundleException("input '${input.name}' ${shape.contentToString()} is not an image batch")
        }
        val (h, w, c) = if (nchw) Triple(shape[2], shape[3], shape[1]) else Triple(shape[1], shape[2], shape[3])
        if (c != channels || h != this.height || w != this.width) {
            throw BundleException("input '${input.name}' is ${h}x${w}x$c, preprocessing gives ${this.height}x${this.width}x$channels ($color)")
        }
        val sized = resizeAndCrop(img)
        val t = Tensor.fromFloats(shape, normalize(sized, nchw))
        val want = DType.of(input.dtype)
        return if (want == DType.FLOAT32 && input.quantization == null) t else t.castTo(want, input.quantization)
    }

    /** Resize (shorter side), center crop, then resize to the model's size. */
    fun resizeAndCrop(src: PixelImage): PixelImage {
        var im = src
        resizeShorterSide?.let { r -> // Python: s = resize / min(w, h); (max(1, round(w * s)), max(1, round(h * s)))
            val s = r.toDouble() / minOf(im.width, im.height)
            im = im.resizeBilinear(maxOf(1, Math.rint(im.width * s).toInt()), maxOf(1, Math.rint(im.height * s).toInt()))
        }
        if ((im.width != cropWidth || im.height != cropHeight) && im.width >= cropWidth && im.height >= cropHeight) {
            im = im.crop((im.width - cropWidth) / 2, (im.height - cropHeight) / 2, cropWidth, cropHeight)
        }
        if (im.width != width || im.height != height) im = im.resizeBilinear(width, height)
        return im
    }

    /** float32 throughout, in Python's order: pixel / scale, then (x - mean) / std. */
    fun normalize(im: PixelImage, nchw: Boolean): FloatArray {
        val c = im.channels
        val scale = scale.toFloat()
        val mean = FloatArray(c) { mean[it].toFloat() }
        val std = FloatArray(c) { std[it].toFloat() }
        val plane = im.width * im.height
        val out = FloatArray(plane * c)
        for (p in 0 until plane) {
            for (k in 0 until c) {
                val v = (im.pixels[p * c + k].toFloat() / scale - mean[k]) / std[k]
                out[if (nchw) k * plane + p else p * c + k] = v
            }
        }
        return out
    }
}

/** 8-bit image, channels interleaved (RGB or L), values 0..255. */
class PixelImage(val width: Int, val height: Int, val channels: Int, val pixels: IntArray) {

    fun crop(left: Int, top: Int, w: Int, h: Int): PixelImage {
        val out = IntArray(w * h * channels)
        for (y in 0 until h) {
            System.arraycopy(pixels, ((top + y) * width + left) * channels, out, y * w * channels, w * channels)
        }
        return PixelImage(w, h, channels, out)
    }

    /**
     * Pillow's Image.resize(..., BILINEAR) for 8-bit images (libImaging/Resample.c): a triangle
     * filter widened by the downscale factor (so it antialiases), coefficients normalized and
     * turned into 22-bit fixed point, horizontal pass then vertical pass, each rounded to 8 bits.
     */
    fun resizeBilinear(outW: Int, outH: Int): PixelImage {
        if (outW == width && outH == height) return this
        var im = this
        if (outW != width) im = im.pass(outW, horizontal = true)
        if (outH != height) im = im.pass(outH, horizontal = false)
        return im
    }

    private fun pass(outSize: Int, horizontal: Boolean): PixelImage {
        val inSize = if (horizontal) width else height
        val (bounds, kk, ksize) = coefficients(inSize, outSize)
        val ow = if (horizontal) outSize else width
        val oh = if (horizontal) height else outSize
        val out = IntArray(ow * oh * channels)
        for (y in 0 until oh) {
            for (x in 0 until ow) {
                val o = if (horizontal) x else y
                val min = bounds[2 * o]
                val n = bounds[2 * o + 1]
                for (c in 0 until channels) {
                    var ss = 1 shl (PRECISION_BITS - 1)
                    for (i in 0 until n) {
                        val src = if (horizontal) (y * width + min + i) else ((min + i) * width + x)
                        ss += pixels[src * channels + c] * kk[o * ksize + i]
                    }
                    out[(y * ow + x) * channels + c] = clip8(ss)
                }
            }
        }
        return PixelImage(ow, oh, channels, out)
    }

    companion object {
        private const val PRECISION_BITS = 32 - 8 - 2

        private fun clip8(v: Int): Int = when {
            v >= (1 shl PRECISION_BITS shl 8) -> 255
            v <= 0 -> 0
            else -> v shr PRECISION_BITS
        }

        /** Pillow's precompute_coeffs + normalize_coeffs_8bpc for the bilinear filter (support 1). */
        private fun coefficients(inSize: Int, outSize: Int): Triple<IntArray, IntArray, Int> {
            val scale = inSize.toDouble() / outSize
            val filterscale = maxOf(scale, 1.0)
            val support = 1.0 * filterscale
            val ksize = Math.ceil(support).toInt() * 2 + 1
            val bounds = IntArray(outSize * 2)
            val kk = IntArray(outSize * ksize)
            val k = DoubleArray(ksize)
            for (xx in 0 until outSize) {
                val center = (xx + 0.5) * scale
                val ss = 1.0 / filterscale
                val xmin = maxOf((center - support + 0.5).toInt(), 0)
                val xmax = minOf((center + support + 0.5).toInt(), inSize) - xmin
                var ww = 0.0
                for (x in 0 until xmax) {
                    val t = Math.abs((x + xmin - center + 0.5) * ss)
                    val w = if (t < 1.0) 1.0 - t else 0.0
                    k[x] = w
                    ww += w
                }
                for (x in 0 until ksize) {
                    val v = if (x < xmax && ww != 0.0) k[x] / ww else if (x < xmax) k[x] else 0.0
                    kk[xx * ksize + x] = if (v < 0) (-0.5 + v * (1 shl PRECISION_BITS)).toInt()
                    else (0.5 + v * (1 shl PRECISION_BITS)).toInt()
                }
                bounds[2 * xx] = xmin
                bounds[2 * xx + 1] = xmax
            }
            return Triple(bounds, kk, ksize)
        }

        /** From 0xAARRGGBB pixels; [gray] converts as Pillow's convert("L") (ITU-R 601-2 luma). */
        fun fromArgb(argb: IntArray, width: Int, height: Int, gray: Boolean): PixelImage {
            if (argb.size != width * height) {
                throw BundleException("${argb.size} pixels for a ${width}x$height image")
            }
            val c = if (gray) 1 else 3
            val px = IntArray(width * height * c)
            for (i in argb.indices) {
                val r = (argb[i] shr 16) and 0xff
                val g = (argb[i] shr 8) and 0xff
                val b = argb[i] and 0xff
                if (gray) {
                    px[i] = (r * 19595 + g * 38470 + b * 7471 + 0x8000) shr 16
                } else {
                    px[3 * i] = r; px[3 * i + 1] = g; px[3 * i + 2] = b
                }
            }
            return PixelImage(width, height, c, px)
        }
    }
}
