// JNI bridge from the JVM (android/bundle-core's NativeLiteRtRunner) to the native runner's
// LiteRT backend (src/backend_litert.cpp, the same code edgeexport-run-native runs): open a
// .tflite, run named tensors through it, get the outputs back as the artifact gives them.
// The app side reads the bundle, feeds the parity inputs and judges the outputs itself.
// Java class io.edgeexport.bundle.LiteRtJni:
//   static long open(String path, int threads)
//   static NativeTensor[] run(long handle, String[] names, String[] dtypes, int[][] shapes, byte[][] data)
//   static void close(long handle)
#include <jni.h>

#include <memory>
#include <string>

#include "backend.h"

namespace {

const char* kTensorClass = "io/edgeexport/bundle/NativeTensor";

void throw_java(JNIEnv* env, const std::string& message) {
  jclass cls = env->FindClass("java/lang/IllegalStateException");
  if (cls != nullptr) env->ThrowNew(cls, message.c_str());
}

std::string str(JNIEnv* env, jstring s) {
  const char* c = env->GetStringUTFChars(s, nullptr);
  std::string out(c ? c : "");
  if (c) env->ReleaseStringUTFChars(s, c);
  return out;
}

ee::Backend* backend(jlong handle) { return reinterpret_cast<ee::Backend*>(handle); }

}  // namespace

extern "C" {

JNIEXPORT jlong JNICALL Java_io_edgeexport_bundle_LiteRtJni_open(JNIEnv* env, jclass, jstring path,
                                                                jint threads) {
  try {
    ee::RunOptions o;
    o.threads = threads;
    return reinterpret_cast<jlong>(ee::open_litert_file(str(env, path), o).release());
  } catch (const std::exception& e) {
    throw_java(env, std::string("LiteRT could not load ") + str(env, path) + ": " + e.what());
    return 0;
  }
}

JNIEXPORT jobjectArray JNICALL Java_io_edgeexport_bundle_LiteRtJni_run(
    JNIEnv* env, jclass, jlong handle, jobjectArray names, jobjectArray dtypes, jobjectArray shapes,
    jobjectArray data) {
  if (handle == 0) {
    throw_java(env, "the LiteRT model is closed");
    return nullptr;
  }
  ee::NamedTensors feeds;
  jsize n = env->GetArrayLength(names);
  for (jsize i = 0; i < n; ++i) {
    ee::Tensor t;
    t.dtype = str(env, static_cast<jstring>(env->GetObjectArrayElement(dtypes, i)));
    auto shape = static_cast<jintArray>(env->GetObjectArrayElement(shapes, i));
    jsize rank = env->GetArrayLength(shape);
    jint* dims = env->GetIntArrayElements(shape, nullptr);
    t.shape.assign(dims, dims + rank);
    env->ReleaseIntArrayElements(shape, dims, JNI_ABORT);
    auto bytes = static_cast<jbyteArray>(env->GetObjectArrayElement(data, i));
    t.data.resize(size_t(env->GetArrayLength(bytes)));
    env->GetByteArrayRegion(bytes, 0, jsize(t.data.size()), reinterpret_cast<jbyte*>(t.data.data()));
    feeds.emplace_back(str(env, static_cast<jstring>(env->GetObjectArrayElement(names, i))), std::move(t));
  }
  ee::NamedTensors outs;
  try {
    outs = backend(handle)->run(feeds);
  } catch (const std::exception& e) {
    throw_java(env, std::string("LiteRT run failed: ") + e.what());
    return nullptr;
  }
  jclass cls = env->FindClass(kTensorClass);
  if (cls == nullptr) return nullptr;  // NoClassDefFoundError is pending
  jmethodID ctor = env->GetMethodID(cls, "<init>", "(Ljava/lang/String;Ljava/lang/String;[I[B)V");
  if (ctor == nullptr) return nullptr;
  jobjectArray result = env->NewObjectArray(jsize(outs.size()), cls, nullptr);
  for (size_t i = 0; i < outs.size(); ++i) {
    const ee::Tensor& t = outs[i].second;
    jintArray shape = env->NewIntArray(jsize(t.shape.size()));
    for (size_t k = 0; k < t.shape.size(); ++k) {
      jint d = jint(t.shape[k]);
      env->SetIntArrayRegion(shape, jsize(k), 1, &d);
    }
    jbyteArray bytes = env->NewByteArray(jsize(t.data.size()));
    env->SetByteArrayRegion(bytes, 0, jsize(t.data.size()), reinterpret_cast<const jbyte*>(t.data.data()));
    jobject obj = env->NewObject(cls, ctor, env->NewStringUTF(outs[i].first.c_str()),
                                 env->NewStringUTF(t.dtype.c_str()), shape, bytes);
    env->SetObjectArrayElement(result, jsize(i), obj);
    env->DeleteLocalRef(obj);
    env->DeleteLocalRef(shape);
    env->DeleteLocalRef(bytes);
  }
  return result;
}

JNIEXPORT void JNICALL Java_io_edgeexport_bundle_LiteRtJni_close(JNIEnv*, jclass, jlong handle) {
  delete backend(handle);
}

}  // extern "C"
