// ONNX Runtime through the OrtApi function table of libonnxruntime.so (the onnxruntime wheel
// ships the library but no header). The table is append-only, so an entry's index never
// changes; the indices below were counted in include/onnxruntime/core/session/
// onnxruntime_c_api.h (struct OrtApi) and checked against onnxruntime 1.32.0. Only the entries
// this file calls are declared. CPU execution provider, as runtimes/onnxruntime.py.
#include <dlfcn.h>

#include <cstring>
#include <string>

#include "backend.h"
#include "json.h"

#ifndef EE_ORT_LIBRARY
#define EE_ORT_LIBRARY ""
#endif

namespace ee {

namespace {

struct OrtStatus;
struct OrtEnv;
struct OrtSession;
struct OrtSessionOptions;
struct OrtMemoryInfo;
struct OrtValue;
struct OrtTensorTypeAndShapeInfo;
struct OrtAllocator;

struct OrtApiBase {
  const void* (*GetApi)(uint32_t version);
  const char* (*GetVersionString)();
};

// API version 13 (onnxruntime 1.13) holds every entry used here; newer libraries serve it.
const uint32_t kApiVersion = 13;

// OrtApi entries by index (each is a function pointer; the table is an array of them).
enum Entry : size_t {
  GetErrorMessage = 2, CreateEnv = 3, CreateSession = 7, Run = 9, CreateSessionOptions = 10,
  SetSessionLogSeverityLevel = 22, SetIntraOpNumThreads = 24, SessionGetInputCount = 30,
  SessionGetOutputCount = 31, SessionGetInputName = 36, SessionGetOutputName = 37,
  CreateTensorWithDataAsOrtValue = 49, GetTensorMutableData = 51, GetTensorElementType = 60,
  GetDimensionsCount = 61, GetDimensions = 62, GetTensorTypeAndShape = 65,
  CreateCpuMemoryInfo = 69, AllocatorFree = 76, GetAllocatorWithDefaultOptions = 78,
  ReleaseEnv = 92, ReleaseStatus = 93, ReleaseMemoryInfo = 94, ReleaseSession = 95,
  ReleaseValue = 96, ReleaseTensorTypeAndShapeInfo = 99, ReleaseSessionOptions = 100,
};

// ONNXTensorElementDataType <-> numpy dtype names
const char* kOrtTypes[] = {nullptr, "float32", "uint8", "int8", "uint16", "int16", "int32",
                           "int64", nullptr, "bool", "float16", "float64", "uint32", "uint64"};

int ort_type(const std::string& dtype) {
  for (int i = 0; i < int(sizeof kOrtTypes / sizeof *kOrtTypes); ++i)
    if (kOrtTypes[i] && dtype == kOrtTypes[i]) return i;
  throw std::runtime_error("onnxruntime: unsupported dtype " + dtype);
}

// The library: next to the executable, else the wheel's copy this runner was built against.
std::string find_library() {
  if (const char* env = std::getenv("EDGEEXPORT_ORT_LIBRARY")) return env;
  std::string configured = EE_ORT_LIBRARY;
  std::string base = configured.empty() ? "libonnxruntime.so"
                                        : configured.substr(configured.rfind('/') + 1);
  std::string dir = configured.empty() ? "." : configured.substr(0, configured.rfind('/'));
  return library_path(base, dir);
}

class Ort : public Backend {
 public:
  Ort(const Bundle& b, const RunOptions& o) {
    std::string lib = find_library();
    handle_ = dlopen(lib.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle_ == nullptr) throw Unavailable(std::string("cannot open onnxruntime: ") + dlerror());
    auto base_fn = reinterpret_cast<const OrtApiBase* (*)()>(dlsym(handle_, "OrtGetApiBase"));
    if (base_fn == nullptr) throw Unavailable(lib + " does not export OrtGetApiBase");
    const OrtApiBase* base = base_fn();
    api_ = static_cast<void* const*>(base->GetApi(kApiVersion));
    if (api_ == nullptr) throw Unavailable(lib + " does not serve OrtApi version 13");
    version_ = base->GetVersionString();

    check(fn<OrtStatus* (*)(int, const char*, OrtEnv**)>(CreateEnv)(3, "edgeexport", &env_));
    check(fn<OrtStatus* (*)(OrtSessionOptions**)>(CreateSessionOptions)(&opts_));
    check(fn<OrtStatus* (*)(OrtSessionOptions*, int)>(SetSessionLogSeverityLevel)(opts_, 3));
    if (o.threads > 0)
      check(fn<OrtStatus* (*)(OrtSessionOptions*, int)>(SetIntraOpNumThreads)(opts_, o.threads));
    std::string path = b.path(b.artifact);
    check(fn<OrtStatus* (*)(OrtEnv*, const char*, OrtSessionOptions*, OrtSession**)>(CreateSession)(
        env_, path.c_str(), opts_, &session_));
    // OrtArenaAllocator (1), OrtMemTypeDefault (0): plain host memory for the input tensors
    check(fn<OrtStatus* (*)(int, int, OrtMemoryInfo**)>(CreateCpuMemoryInfo)(1, 0, &mem_));
    input_names_ = names(SessionGetInputCount, SessionGetInputName);
    output_names_ = names(SessionGetOutputCount, SessionGetOutputName);
    device = "cpu";
    details.push_back({"provider", json_quote("CPUExecutionProvider")});
    details.push_back({"onnxruntime", json_quote(version_)});
    details.push_back({"library", json_quote(lib)});
    details.push_back({"read_for", json_quote("OrtApi table of onnxruntime_c_api.h (append-only), checked with 1.32.0")});
  }

  ~Ort() override {
    if (session_) fn<void (*)(OrtSession*)>(ReleaseSession)(session_);
    if (opts_) fn<void (*)(OrtSessionOptions*)>(ReleaseSessionOptions)(opts_);
    if (mem_) fn<void (*)(OrtMemoryInfo*)>(ReleaseMemoryInfo)(mem_);
    if (env_) fn<void (*)(OrtEnv*)>(ReleaseEnv)(env_);
    // the library stays loaded: its thread pools may still be winding down
  }

  NamedTensors run(const NamedTensors& feeds) override {
    std::vector<Tensor> held;  // ORT borrows the input bytes for the duration of Run
    held.reserve(input_names_.size());
    std::vector<OrtValue*> in;
    std::vector<const char*> in_names, out_names;
    auto create = fn<OrtStatus* (*)(const OrtMemoryInfo*, void*, size_t, const int64_t*, size_t, int,
                                    OrtValue**)>(CreateTensorWithDataAsOrtValue);
    auto release = fn<void (*)(OrtValue*)>(ReleaseValue);
    NamedTensors result;
    std::vector<OrtValue*> out(output_names_.size(), nullptr);
    try {
      for (const std::string& name : input_names_) {
        const Tensor* src = find_tensor(feeds, name);
        if (src == nullptr) throw std::runtime_error("missing input '" + name + "'");
        held.push_back(*src);
        Tensor& t = held.back();
        OrtValue* v = nullptr;
        check(create(mem_, t.data.data(), t.data.size(), t.shape.data(), t.shape.size(),
                     ort_type(t.dtype), &v));
        in.push_back(v);
        in_names.push_back(name.c_str());
      }
      for (const std::string& name : output_names_) out_names.push_back(name.c_str());
      check(fn<OrtStatus* (*)(OrtSession*, const void*, const char* const*, const OrtValue* const*,
                              size_t, const char* const*, size_t, OrtValue**)>(Run)(
          session_, nullptr, in_names.data(), in.data(), in.size(), out_names.data(),
          out_names.size(), out.data()));
      for (size_t i = 0; i < out.size(); ++i) result.emplace_back(output_names_[i], fetch(out[i]));
    } catch (...) {
      for (OrtValue* v : in) release(v);
      for (OrtValue* v : out) if (v) release(v);
      throw;
    }
    for (OrtValue* v : in) release(v);
    for (OrtValue* v : out) release(v);
    return result;
  }

 private:
  void* handle_ = nullptr;
  void* const* api_ = nullptr;
  std::string version_;
  OrtEnv* env_ = nullptr;
  OrtSessionOptions* opts_ = nullptr;
  OrtSession* session_ = nullptr;
  OrtMemoryInfo* mem_ = nullptr;
  std::vector<std::string> input_names_, output_names_;

  template <typename F>
  F fn(Entry e) const {
    return reinterpret_cast<F>(api_[e]);
  }

  void check(OrtStatus* s) const {
    if (s == nullptr) return;
    std::string msg = fn<const char* (*)(const OrtStatus*)>(GetErrorMessage)(s);
    fn<void (*)(OrtStatus*)>(ReleaseStatus)(s);
    throw std::runtime_error("onnxruntime: " + msg);
  }

  std::vector<std::string> names(Entry count_fn, Entry name_fn) {
    OrtAllocator* alloc = nullptr;
    check(fn<OrtStatus* (*)(OrtAllocator**)>(GetAllocatorWithDefaultOptions)(&alloc));
    size_t n = 0;
    check(fn<OrtStatus* (*)(const OrtSession*, size_t*)>(count_fn)(session_, &n));
    std::vector<std::string> out;
    for (size_t i = 0; i < n; ++i) {
      char* name = nullptr;
      check(fn<OrtStatus* (*)(const OrtSession*, size_t, OrtAllocator*, char**)>(name_fn)(
          session_, i, alloc, &name));
      out.push_back(name);
      check(fn<OrtStatus* (*)(OrtAllocator*, void*)>(AllocatorFree)(alloc, name));
    }
    return out;
  }

  Tensor fetch(OrtValue* v) {
    OrtTensorTypeAndShapeInfo* info = nullptr;
    check(fn<OrtStatus* (*)(const OrtValue*, OrtTensorTypeAndShapeInfo**)>(GetTensorTypeAndShape)(v, &info));
    int type = 0;
    size_t rank = 0;
    std::vector<int64_t> shape;
    try {
      check(fn<OrtStatus* (*)(const OrtTensorTypeAndShapeInfo*, int*)>(GetTensorElementType)(info, &type));
      check(fn<OrtStatus* (*)(const OrtTensorTypeAndShapeInfo*, size_t*)>(GetDimensionsCount)(info, &rank));
      shape.resize(rank);
      check(fn<OrtStatus* (*)(const OrtTensorTypeAndShapeInfo*, int64_t*, size_t)>(GetDimensions)(
          info, shape.data(), rank));
    } catch (...) {
      fn<void (*)(OrtTensorTypeAndShapeInfo*)>(ReleaseTensorTypeAndShapeInfo)(info);
      throw;
    }
    fn<void (*)(OrtTensorTypeAndShapeInfo*)>(ReleaseTensorTypeAndShapeInfo)(info);
    if (type <= 0 || type >= int(sizeof kOrtTypes / sizeof *kOrtTypes) || !kOrtTypes[type])
      throw std::runtime_error("onnxruntime: unsupported output element type " + std::to_string(type));
    Tensor t = make_tensor(kOrtTypes[type], shape);
    void* data = nullptr;
    check(fn<OrtStatus* (*)(OrtValue*, void**)>(GetTensorMutableData)(v, &data));
    if (!t.data.empty()) std::memcpy(t.data.data(), data, t.data.size());
    return t;
  }
};

}  // namespace

std::unique_ptr<Backend> open_onnxruntime(const Bundle& b, const RunOptions& o) {
  return std::make_unique<Ort>(b, o);
}

}  // namespace ee
