// What runs the artifact: LiteRT's Interpreter in the Android app, CoreML in the iOS app, and
// the native runner's LiteRT backend through JNI (NativeLiteRtRunner) in the JVM tests.
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
