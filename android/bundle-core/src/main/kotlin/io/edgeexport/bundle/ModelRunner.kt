// What runs the artifact: LiteRT's Interpreter in the Android app, CoreML in the iOS app, and
// (until the native runner's JNI bridge exists) recorded outputs of a real runtime in JVM tests.
package io.edgeexport.bundle

interface ModelRunner : AutoCloseable {
    /** e.g. "litert-xnnpack", "litert-nnapi", "litert-gpu" */
    val name: String

    /**
     * Feeds inputs by name (cast to what the model takes), returns outputs by name as the
     * artifact gives them: int8 codes for an int8 output (TensorSpec.real dequantizes them).
     */
    fun run(inputs: Map<String, Tensor>): Map<String, Tensor>

    override fun close() {}
}
