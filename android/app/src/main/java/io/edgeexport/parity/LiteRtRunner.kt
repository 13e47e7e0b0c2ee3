// ModelRunner over LiteRT's Interpreter API (com.google.ai.edge.litert 1.4.0), on one delegate:
// CPU (XNNPACK), NNAPI (what the nnapi target's partition report is about) or GPU.
package io.edgeexport.parity

import io.edgeexport.bundle.BundleException
import io.edgeexport.bundle.DType
import io.edgeexport.bundle.ModelRunner
import io.edgeexport.bundle.Quantization
import io.edgeexport.bundle.Tensor
import org.tensorflow.lite.Delegate
import org.tensorflow.lite.Interpreter
import org.tensorflow.lite.gpu.CompatibilityList
import org.tensorflow.lite.gpu.GpuDelegate
import org.tensorflow.lite.nnapi.NnApiDelegate
import java.nio.ByteBuffer
import java.nio.ByteOrder

enum class Accelerator(val label: String) {
    CPU("litert-xnnpack"), NNAPI("litert-nnapi"), GPU("litert-gpu");

    /** Why this accelerator cannot be used on this phone, or null when it can. */
    fun unavailableReason(): String? = when (this) {
        GPU -> if (CompatibilityList().isDelegateSupportedOnThisDevice) null else "the GPU delegate does not support this device"
        else -> null
    }
}

class LiteRtRunner(model: ByteArray, val accelerator: Accelerator, threads: Int = 4) : ModelRunner {
    override val name: String = accelerator.label
    private val delegate: Delegate?
    private val interpreter: Interpreter

    init {
        val buffer = ByteBuffer.allocateDirect(model.size).order(ByteOrder.nativeOrder())
        buffer.put(model).rewind()
        val options = Interpreter.Options().setNumThreads(threads)
        delegate = when (accelerator) {
            Accelerator.CPU -> null.also { options.setUseXNNPACK(true) }
            Accelerator.NNAPI -> NnApiDelegate()
            Accelerator.GPU -> GpuDelegate(CompatibilityList().bestOptionsForThisDevice)
        }
        delegate?.let { options.addDelegate(it) }
        interpreter = Interpreter(buffer, options)
    }

    private val inputNames = List(interpreter.inputTensorCount) { interpreter.getInputTensor(it).name() }

    override fun run(inputs: Map<String, Tensor>): Map<String, Tensor> {
        val feeds = Array<Any>(inputNames.size) { i ->
            val t = interpreter.getInputTensor(i)
            val given = inputs[t.name()]
                ?: throw BundleException("no value for the model's input '${t.name()}' (given: ${inputs.keys})")
            // int64 token ids -> int32, float -> int8 with the tensor's scale/zero point, ...
            val cast = given.castTo(dtype(t), quant(t))
            ByteBuffer.allocateDirect(cast.data.size).order(ByteOrder.LITTLE_ENDIAN).put(cast.data).rewind()
        }
        val outputs = HashMap<Int, Any>()
        for (i in 0 until interpreter.outputTensorCount) {
            outputs[i] = ByteBuffer.allocateDirect(interpreter.getOutputTensor(i).numBytes()).order(ByteOrder.LITTLE_ENDIAN)
        }
        interpreter.runForMultipleInputsOutputs(feeds, outputs)
        val result = LinkedHashMap<String, Tensor>()
        for (i in 0 until interpreter.outputTensorCount) {
            val t = interpreter.getOutputTensor(i)
            val buf = outputs[i] as ByteBuffer
            val bytes = ByteArray(buf.capacity())
            buf.rewind()
            buf.get(bytes)
            // as the artifact gives it (int8 codes with --int8-io): ParityCheck dequantizes with
            // the manifest's outputs[].quantization
            result[t.name()] = Tensor(t.shape(), dtype(t), bytes)
        }
        return result
    }

    private fun dtype(t: org.tensorflow.lite.Tensor): DType = DType.of(t.dataType().name.lowercase())

    private fun quant(t: org.tensorflow.lite.Tensor): Quantization? {
        val q = t.quantizationParams()
        return if (q.scale == 0f || dtype(t) == DType.FLOAT32) null else Quantization(q.scale.toDouble(), q.zeroPoint.toLong())
    }

    override fun close() {
        interpreter.close()
        (delegate as? AutoCloseable)?.close()
    }
}
