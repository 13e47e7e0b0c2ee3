// A ModelRunner over the native runner's LiteRT backend (native/src/backend_litert.cpp) through
// JNI (native/jni/edgeexport_jni.cpp, libedgeexport_jni.so): the JVM runs the real .tflite with
// the code edgeexport-run-native runs. The app module keeps LiteRT's Interpreter API (LiteRtRunner).
package io.edgeexport.bundle

import java.io.File

/** An output as the native backend gives it: name, numpy dtype, shape, little-endian bytes. */
class NativeTensor(val name: String, val dtype: String, val shape: IntArray, val data: ByteArray)

/** The JNI entry points of libedgeexport_jni.so (failures throw IllegalStateException). */
object LiteRtJni {
    @JvmStatic external fun open(path: String, threads: Int): Long

    @JvmStatic external fun run(
        handle: Long, names: Array<String>, dtypes: Array<String>, shapes: Array<IntArray>, data: Array<ByteArray>,
    ): Array<NativeTensor>

    @JvmStatic external fun close(handle: Long)
}

/**
 * Runs [artifact] (a .tflite) with LiteRT's CompiledModel on the CPU (XNNPACK) in native code;
 * [library] is libedgeexport_jni.so, loaded once per JVM with System.load. [threads] 0 is
 * LiteRT's default. Outputs come back as the artifact gives them (int8 codes for an int8 output).
 */
class NativeLiteRtRunner(artifact: File, library: File, threads: Int = 0) : ModelRunner {
    override val name: String = "litert-native-jni"
    private var handle: Long

    init {
        load(library)
        handle = LiteRtJni.open(artifact.path, threads)
    }

    override fun run(inputs: Map<String, Tensor>): Map<String, Tensor> {
        check(handle != 0L) { "$name is closed" }
        val names = inputs.keys.toTypedArray()
        val outs = LiteRtJni.run(
            handle, names, Array(names.size) { inputs.getValue(names[it]).dtype.numpyName },
            Array(names.size) { inputs.getValue(names[it]).shape }, Array(names.size) { inputs.getValue(names[it]).data },
        )
        return outs.associateTo(LinkedHashMap()) { it.name to Tensor(it.shape, DType.of(it.dtype), it.data) }
    }

    override fun close() {
        if (handle != 0L) LiteRtJni.close(handle)
        handle = 0L
    }

    companion object {
        private val loaded = mutableSetOf<String>()

        /** System.load once per path (a second load of the same library is a JVM error). */
        @Synchronized
        fun load(library: File) {
            val path = library.absolutePath
            if (!library.isFile) throw BundleException("$path: missing; scripts/build-native.sh host builds libedgeexport_jni.so")
            if (loaded.add(path)) System.load(path)
        }
    }
}
