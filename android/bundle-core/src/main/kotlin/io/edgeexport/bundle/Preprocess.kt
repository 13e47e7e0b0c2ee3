// Image -> input tensor as the manifest's `preprocessing` says, computing what edgeexport's
// `--preprocess` path computes with Pillow: same resize (Pillow's fixed-point bilinear filter),
// same center crop, same float32 arithmetic, so the tensor matches Python's to float rounding.
package io.edgeexport.bundle

import org.json.JSONArray
import org.json.JSONObject

/**
 * The manifest's `preprocessing` object. Keys read (all optional):
 * `resize` (int: shorter side, or [h, w]), `crop` (int or [h, w], centered), `mean`, `std`
 * (per channel, applied after value_range), `layout` ("nchw" | "nhwc"), `channel_order`
 * ("rgb" | "bgr" | "gray"), `value_range` ([lo, hi]: pixel 0..255 maps onto it; default [0, 1]).
 * edgeexport's own spelling `scale` (x = pixel / scale) and `mode` ("RGB" | "L") are read too.
 */
data class Preprocessing(
    val resize: IntArray? = null,
    val crop: IntArray? = null,
    val mean: DoubleArray = doubleArrayOf(0.0),
    val std: DoubleArray = doubleArrayOf(1.0),
    val layout: String? = null,
    val channelOrder: String = "rgb",
    val valueRange: DoubleArray = doubleArrayOf(0.0, 1.0),
) {
    companion object {
        /** `--preprocess imagenet` of edgeexport.quantize.calibration. */
        val IMAGENET = Preprocessing(
            resize = intArrayOf(256), crop = intArrayOf(224),
            mean = doubleArrayOf(0.485, 0.456, 0.406), std = doubleArrayOf(0.229, 0.224, 0.225),
            layout = "nchw",
        )

        fun fromJson(o: JSONObject): Preprocessing {
            fun sizes(key: String): IntArray? {
                if (!o.has(key) || o.isNull(key)) return null
                val v = o.get(key)
                return if (v is JSONArray) IntArray(v.length()) { v.getInt(it) } else intArrayOf(o.getInt(key))
            }
            fun floats(key: String, default: DoubleArray): DoubleArray =
                o.optJSONArray(key)?.let { Manifest.doubles(it) }
                    ?: if (o.has(key) && !o.isNull(key)) doubleArrayOf(o.getDouble(key)) else default
            val mode = Manifest.optString(o, "mode")?.lowercase()
            val order = Manifest.optString(o, "channel_order")?.lowercase()
                ?: if (mode == "l") "gray" else "rgb"
            if (order !in listOf("rgb", "bgr", "gray")) {
                throw BundleException("preprocessing.channel_order '$order' is not rgb, bgr or gray")
            }
            val range = o.optJSONArray("value_range")?.let { Manifest.doubles(it) }
                ?: if (o.has("scale")) doubleArrayOf(0.0, 255.0 / o.getDouble("scale")) else doubleArrayOf(0.0, 1.0)
            return Preprocessing(
                sizes("resize"), sizes("crop"), floats("mean", doubleArrayOf(0.0)),
                floats("std", doubleArrayOf(1.0)), Manifest.optString(o, "layout")?.lowercase(),
                order, range,
            )
        }
    }

    /**
     * [argb] holds [width] x [height] pixels as Android's Bitmap.getPixels gives them
     * (0xAARRGGBB, row-major; alpha ignored). Returns the tensor [input] takes: its shape, its
     * layout (the manifest's input layout, else ours, else NCHW), quantized when the input is int8.
     */
    fun toTensor(argb: IntArray, width: Int, height: Int, input: TensorSpec): Tensor {
        val channels = if (channelOrder == "gray") 1 else 3
        val img = PixelImage.fromArgb(argb, width, height, channels == 1)
        val nchw = (input.layout?.lowercase() ?: layout ?: "nchw") == "nchw"
        val shape = IntArray(input.shape.size) { if (input.shape[it] < 0) 1 else input.shape[it] }
        if (shape.size != 4) {
            throw BundleException("input '${input.name}' ${shape.contentToString()} is not an image batch")
        }
        val (h, w, c) = if (nchw) Triple(shape[2], shape[3], shape[1]) else Triple(shape[1], shape[2], shape[3])
        if (c != channels) {
            throw BundleException("input '${input.name}' has $c channels, preprocessing gives $channels ($channelOrder)")
        }
        val sized = resizeAndCrop(img, h, w)
        val values = normalize(sized, nchw)
        val t = Tensor.fromFloats(shape, values)
        val want = DType.of(input.dtype)
        return if (want == DType.FLOAT32 && input.quantization == null) t else t.castTo(want, input.quantization)
    }

    /** Resize (shorter side, or exact [h, w]), center crop, then resize to the model's size. */
    fun resizeAndCrop(src: PixelImage, h: Int, w: Int): PixelImage {
        var im = src
        val r = resize
        if (r != null) {
            im = if (r.size == 2) {
                im.resizeBilinear(r[1], r[0])
            } else { // Python: s = resize / min(w, h); (max(1, round(w * s)), max(1, round(h * s)))
                val s = r[0].toDouble() / minOf(im.width, im.height)
                im.resizeBilinear(maxOf(1, Math.rint(im.width * s).toInt()), maxOf(1, Math.rint(im.height * s).toInt()))
            }
        }
        val c = crop
        val (ch, cw) = when {
            c == null -> h to w
            c.size == 2 -> c[0] to c[1]
            else -> c[0] to c[0]
        }
        if ((im.width != cw || im.height != ch) && im.width >= cw && im.height >= ch) {
            im = im.crop((im.width - cw) / 2, (im.height - ch) / 2, cw, ch)
        }
        if (im.width != w || im.height != h) im = im.resizeBilinear(w, h)
        return im
    }

    /** float32 throughout, in Python's order: pixel / scale (+ lo), then (x - mean) / std. */
    fun normalize(im: PixelImage, nchw: Boolean): FloatArray {
        val c = im.channels
        val lo = valueRange[0].toFloat()
        val scale = (255.0 / (valueRange[1] - valueRange[0])).toFloat()
        val mean = FloatArray(c) { mean[if (this.mean.size == 1) 0 else it].toFloat() }
        val std = FloatArray(c) { std[if (this.std.size == 1) 0 else it].toFloat() }
        val plane = im.width * im.height
        val out = FloatArray(plane * c)
        for (p in 0 until plane) {
            for (k in 0 until c) {
                val src = if (channelOrder == "bgr") c - 1 - k else k
                var x = im.pixels[p * c + src].toFloat() / scale
                if (lo != 0f) x += lo
                val v = (x - mean[k]) / std[k]
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
