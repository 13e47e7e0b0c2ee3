// LiteRT through the LiteRt C API of libLiteRt.so (the ai-edge-litert wheel ships the library
// but no headers). Declared here: only the entries this file calls, with the prototypes of
// ai-edge-litert 2.3.0 (google-ai-edge/LiteRT litert/c/*.h of that release; they changed
// between 1.x and 2.x, e.g. LiteRtCreateModelFromFile gained the environment argument).
// CompiledModel on the CPU accelerator: XNNPACK, as the Python interpreter uses by default.
#include <cstdlib>
#include <cstring>
#include <string>

#include "backend.h"
#include "json.h"

extern "C" {
typedef int LiteRtStatus;  // enum; kLiteRtStatusOk == 0
typedef size_t LiteRtParamIndex;
typedef struct LiteRtEnvironmentT* LiteRtEnvironment;
typedef struct LiteRtModelT* LiteRtModel;
typedef struct LiteRtSignatureT* LiteRtSignature;
typedef struct LiteRtTensorT* LiteRtTensor;
typedef struct LiteRtOptionsT* LiteRtOptions;
typedef struct LiteRtCompiledModelT* LiteRtCompiledModel;
typedef struct LiteRtTensorBufferRequirementsT* LiteRtTensorBufferRequirements;
typedef struct LiteRtTensorBufferT* LiteRtTensorBuffer;
typedef struct LiteRtOpaqueOptionsT* LiteRtOpaqueOptions;
struct LiteRtEnvOption;

// litert_layout.h / litert_model_types.h: ABI-stable structs (72 bytes on 64-bit targets).
typedef struct {
  unsigned int rank : 7;
  unsigned int has_strides : 1;
  int32_t dimensions[8];
  uint32_t strides[8];
} LiteRtLayout;
typedef struct {
  int element_type;  // LiteRtElementType, TfLiteType numbering
  LiteRtLayout layout;
} LiteRtRankedTensorType;
typedef struct {
  float scale;
  int64_t zero_point;
} LiteRtQuantizationPerTensor;

LiteRtStatus LiteRtCreateEnvironment(int num_options, const LiteRtEnvOption* options,
                                     LiteRtEnvironment* environment);
void LiteRtDestroyEnvironment(LiteRtEnvironment environment);
LiteRtStatus LiteRtCreateModelFromFile(LiteRtEnvironment environment, const char* filename,
                                       LiteRtModel* model);
void LiteRtDestroyModel(LiteRtModel model);
LiteRtStatus LiteRtGetNumModelSignatures(LiteRtModel model, LiteRtParamIndex* num);
LiteRtStatus LiteRtGetModelSignature(LiteRtModel model, LiteRtParamIndex index,
                                     LiteRtSignature* signature);
LiteRtStatus LiteRtGetNumSignatureInputs(LiteRtSignature signature, LiteRtParamIndex* num);
LiteRtStatus LiteRtGetNumSignatureOutputs(LiteRtSignature signature, LiteRtParamIndex* num);
LiteRtStatus LiteRtGetSignatureInputName(LiteRtSignature signature, LiteRtParamIndex i,
                                         const char** name);
LiteRtStatus LiteRtGetSignatureOutputName(LiteRtSignature signature, LiteRtParamIndex i,
                                          const char** name);
LiteRtStatus LiteRtGetSignatureInputTensorByIndex(LiteRtSignature signature, LiteRtParamIndex i,
                                                  LiteRtTensor* tensor);
LiteRtStatus LiteRtGetSignatureOutputTensorByIndex(LiteRtSignature signature, LiteRtParamIndex i,
                                                   LiteRtTensor* tensor);
LiteRtStatus LiteRtGetTensorName(LiteRtTensor tensor, const char** name);
LiteRtStatus LiteRtGetRankedTensorType(LiteRtTensor tensor, LiteRtRankedTensorType* type);
LiteRtStatus LiteRtGetQuantizationTypeId(LiteRtTensor tensor, int* q_type_id);
LiteRtStatus LiteRtGetPerTensorQuantization(LiteRtTensor tensor, LiteRtQuantizationPerTensor* q);
LiteRtStatus LiteRtCreateOptions(LiteRtOptions* options);
void LiteRtDestroyOptions(LiteRtOptions options);
LiteRtStatus LiteRtSetOptionsHardwareAccelerators(LiteRtOptions options, int accelerators);
LiteRtStatus LiteRtCreateOpaqueOptions(const char* payload_identifier, void* payload_data,
                                       void (*payload_destructor)(void*),
                                       LiteRtOpaqueOptions* options);
LiteRtStatus LiteRtAddOpaqueOptions(LiteRtOptions options, LiteRtOpaqueOptions opaque);  // takes it
LiteRtStatus LiteRtCreateCompiledModel(LiteRtEnvironment environment, LiteRtModel model,
                                       LiteRtOptions options, LiteRtCompiledModel* compiled);
void LiteRtDestroyCompiledModel(LiteRtCompiledModel compiled);
LiteRtStatus LiteRtGetCompiledModelInputBufferRequirements(
    LiteRtCompiledModel compiled, LiteRtParamIndex signature_index, LiteRtParamIndex input_index,
    LiteRtTensorBufferRequirements* requirements);
LiteRtStatus LiteRtGetCompiledModelOutputBufferRequirements(
    LiteRtCompiledModel compiled, LiteRtParamIndex signature_index, LiteRtParamIndex output_index,
    LiteRtTensorBufferRequirements* requirements);
LiteRtStatus LiteRtCreateManagedTensorBufferFromRequirements(
    LiteRtEnvironment env, const LiteRtRankedTensorType* tensor_type,
    LiteRtTensorBufferRequirements requirements, LiteRtTensorBuffer* buffer);
void LiteRtDestroyTensorBuffer(LiteRtTensorBuffer buffer);
LiteRtStatus LiteRtGetTensorBufferPackedSize(LiteRtTensorBuffer buffer, size_t* size);
LiteRtStatus LiteRtLockTensorBuffer(LiteRtTensorBuffer buffer, void** host_mem, int lock_mode);
LiteRtStatus LiteRtUnlockTensorBuffer(LiteRtTensorBuffer buffer);
LiteRtStatus LiteRtRunCompiledModel(LiteRtCompiledModel compiled, LiteRtParamIndex signature_index,
                                    size_t num_inputs, LiteRtTensorBuffer* inputs,
                                    size_t num_outputs, LiteRtTensorBuffer* outputs);
}

namespace ee {

namespace {

const int kHwCpu = 1;                                  // kLiteRtHwAcceleratorCpu
const int kLockRead = 0, kLockWrite = 1;               // kLiteRtTensorBufferLockMode*
const int kQuantPerTensor = 1;                         // kLiteRtQuantizationPerTensor

void check(LiteRtStatus s, const char* call) {
  if (s != 0) throw std::runtime_error(std::string(call) + " failed (LiteRtStatus " + std::to_string(s) + ")");
}

std::string dtype_of(int element_type) {  // TfLiteType numbering
  switch (element_type) {
    case 1: return "float32";
    case 2: return "int32";
    case 3: return "uint8";
    case 4: return "int64";
    case 6: return "bool";
    case 7: return "int16";
    case 9: return "int8";
    case 10: return "float16";
    case 11: return "float64";
    default: throw std::runtime_error("unsupported LiteRT element type " + std::to_string(element_type));
  }
}

struct Port {
  std::string name;  // signature name; matched against the manifest by name, then tensor name
  std::string tensor_name;
  LiteRtRankedTensorType type;
  std::string dtype;
  std::vector<int64_t> shape;
  bool quantized = false;
  LiteRtQuantizationPerTensor q{};
  LiteRtTensorBuffer buffer = nullptr;
};

class LiteRt : public Backend {
 public:
  LiteRt(const std::string& path, const RunOptions& o) {
    check(LiteRtCreateEnvironment(0, nullptr, &env_), "LiteRtCreateEnvironment");
    check(LiteRtCreateModelFromFile(env_, path.c_str(), &model_), "LiteRtCreateModelFromFile");
    LiteRtParamIndex nsig = 0;
    check(LiteRtGetNumModelSignatures(model_, &nsig), "LiteRtGetNumModelSignatures");
    if (nsig == 0) throw std::runtime_error(path + " has no signature");
    LiteRtSignature sig;
    check(LiteRtGetModelSignature(model_, 0, &sig), "LiteRtGetModelSignature");
    LiteRtParamIndex nin = 0, nout = 0;
    check(LiteRtGetNumSignatureInputs(sig, &nin), "LiteRtGetNumSignatureInputs");
    check(LiteRtGetNumSignatureOutputs(sig, &nout), "LiteRtGetNumSignatureOutputs");
    for (bool input : {true, false}) {  // signature order; run() matches names to the manifest
      for (LiteRtParamIndex i = 0; i < (input ? nin : nout); ++i) {
        const char* name;
        LiteRtTensor t;
        check(input ? LiteRtGetSignatureInputName(sig, i, &name) : LiteRtGetSignatureOutputName(sig, i, &name),
              "LiteRtGetSignature*Name");
        check(input ? LiteRtGetSignatureInputTensorByIndex(sig, i, &t)
                    : LiteRtGetSignatureOutputTensorByIndex(sig, i, &t),
              "LiteRtGetSignature*TensorByIndex");
        (input ? inputs_ : outputs_).push_back(describe(name, t));
      }
    }
    check(LiteRtCreateOptions(&options_), "LiteRtCreateOptions");
    check(LiteRtSetOptionsHardwareAccelerators(options_, kHwCpu), "LiteRtSetOptionsHardwareAccelerators");
    if (o.threads > 0) {
      // libLiteRt.so 2.3.0 exports no CPU-options setter; its XNNPACK accelerator reads an
      // opaque option "xnnpack" whose payload is TOML text (litert_cpu_options.cc there)
      std::string toml = "num_threads = " + std::to_string(o.threads) + "\n";
      LiteRtOpaqueOptions cpu;
      check(LiteRtCreateOpaqueOptions("xnnpack", strdup(toml.c_str()), std::free, &cpu),
            "LiteRtCreateOpaqueOptions");
      check(LiteRtAddOpaqueOptions(options_, cpu), "LiteRtAddOpaqueOptions");
    }
    details.push_back({"threads", o.threads > 0 ? std::to_string(o.threads) : "null"});
    check(LiteRtCreateCompiledModel(env_, model_, options_, &compiled_), "LiteRtCreateCompiledModel");
    for (bool input : {true, false}) {
      std::vector<Port>& ports = input ? inputs_ : outputs_;
      for (size_t i = 0; i < ports.size(); ++i) {
        LiteRtTensorBufferRequirements req;  // owned by the compiled model
        check(input ? LiteRtGetCompiledModelInputBufferRequirements(compiled_, 0, i, &req)
                    : LiteRtGetCompiledModelOutputBufferRequirements(compiled_, 0, i, &req),
              "LiteRtGetCompiledModel*BufferRequirements");
        check(LiteRtCreateManagedTensorBufferFromRequirements(env_, &ports[i].type, req, &ports[i].buffer),
              "LiteRtCreateManagedTensorBufferFromRequirements");
      }
    }
    for (const Port& p : outputs_)
      output_quantization.push_back({p.name, {p.quantized, p.q.scale, p.q.zero_point}});
    device = "cpu";
    details.push_back({"api", json_quote("LiteRt C API (CompiledModel, CPU accelerator)")});
    details.push_back({"library", json_quote("libLiteRt.so")});
    details.push_back({"read_for", json_quote("ai-edge-litert 2.3.0")});
  }

  ~LiteRt() override {
    for (auto* ports : {&inputs_, &outputs_})
      for (auto& p : *ports)
        if (p.buffer) LiteRtDestroyTensorBuffer(p.buffer);
    if (compiled_) LiteRtDestroyCompiledModel(compiled_);
    if (options_) LiteRtDestroyOptions(options_);
    if (model_) LiteRtDestroyModel(model_);
    if (env_) LiteRtDestroyEnvironment(env_);
  }

  NamedTensors run(const NamedTensors& feeds) override {
    std::vector<LiteRtTensorBuffer> in, out;
    for (Port& p : inputs_) {
      const Tensor* src = find_tensor(feeds, p.name);
      if (src == nullptr) src = find_tensor(feeds, p.tensor_name);
      if (src == nullptr) throw std::runtime_error("missing input '" + p.name + "'");
      // as the Python runtime: the sample is cast to the artifact's dtype (np.asarray(dtype=));
      // no copy when it already has it (a 224x224 image is 600 kB per run)
      if (src->dtype == p.dtype) write(p.buffer, src->data);
      else write(p.buffer, src->cast(p.dtype).data);
      in.push_back(p.buffer);
    }
    for (Port& p : outputs_) out.push_back(p.buffer);
    check(LiteRtRunCompiledModel(compiled_, 0, in.size(), in.data(), out.size(), out.data()),
          "LiteRtRunCompiledModel");
    NamedTensors result;
    for (Port& p : outputs_) {
      Tensor t = make_tensor(p.dtype, p.shape);
      read(p.buffer, t.data);
      result.emplace_back(p.name, std::move(t));
    }
    return result;
  }

 private:
  LiteRtEnvironment env_ = nullptr;
  LiteRtModel model_ = nullptr;
  LiteRtOptions options_ = nullptr;
  LiteRtCompiledModel compiled_ = nullptr;
  std::vector<Port> inputs_, outputs_;

  static Port describe(const char* name, LiteRtTensor t) {
    Port p;
    p.name = name;
    const char* tn = "";
    if (LiteRtGetTensorName(t, &tn) == 0 && tn) p.tensor_name = tn;
    check(LiteRtGetRankedTensorType(t, &p.type), "LiteRtGetRankedTensorType");
    p.dtype = dtype_of(p.type.element_type);
    for (unsigned i = 0; i < p.type.layout.rank; ++i) p.shape.push_back(p.type.layout.dimensions[i]);
    int qtype = 0;
    if (LiteRtGetQuantizationTypeId(t, &qtype) == 0 && qtype == kQuantPerTensor &&
        p.dtype.find("int") != std::string::npos) {
      check(LiteRtGetPerTensorQuantization(t, &p.q), "LiteRtGetPerTensorQuantization");
      p.quantized = true;
    }
    return p;
  }

  static void write(LiteRtTensorBuffer buf, const std::vector<uint8_t>& bytes) {
    size_t size = 0;
    check(LiteRtGetTensorBufferPackedSize(buf, &size), "LiteRtGetTensorBufferPackedSize");
    if (size != bytes.size())
      throw std::runtime_error("input needs " + std::to_string(size) + " bytes, the sample has " +
                               std::to_string(bytes.size()));
    void* mem = nullptr;
    check(LiteRtLockTensorBuffer(buf, &mem, kLockWrite), "LiteRtLockTensorBuffer");
    std::memcpy(mem, bytes.data(), size);
    check(LiteRtUnlockTensorBuffer(buf), "LiteRtUnlockTensorBuffer");
  }

  static void read(LiteRtTensorBuffer buf, std::vector<uint8_t>& bytes) {
    size_t size = 0;
    check(LiteRtGetTensorBufferPackedSize(buf, &size), "LiteRtGetTensorBufferPackedSize");
    if (size != bytes.size()) throw std::runtime_error("output buffer size differs from its type");
    void* mem = nullptr;
    check(LiteRtLockTensorBuffer(buf, &mem, kLockRead), "LiteRtLockTensorBuffer");
    std::memcpy(bytes.data(), mem, size);
    check(LiteRtUnlockTensorBuffer(buf), "LiteRtUnlockTensorBuffer");
  }
};

}  // namespace

std::unique_ptr<Backend> open_litert_file(const std::string& path, const RunOptions& o) {
  return std::make_unique<LiteRt>(path, o);
}

std::unique_ptr<Backend> open_litert(const Bundle& b, const RunOptions& o) {
  return open_litert_file(b.path(b.artifact), o);
}

}  // namespace ee
