// A bundle written by `edgeexport convert`: manifest.json read, every file's sha256 checked
// against the manifest, paths kept inside the bundle folder, parity tensors loaded.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "json.h"
#include "stats.h"
#include "tensor.h"

namespace ee {

// A bad or tampered bundle: the message is one line naming the file (exit code 2).
class BundleError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The bundle contract version this reader follows (src/edgeexport/validate/manifest.schema.json).
constexpr int kSchemaVersion = 1;

// inputs[]/outputs[] as the artifact takes/gives the tensor.
struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;  // symbolic dimensions are -1
  std::string dtype;
  std::string layout;  // NCHW | NHWC | plain
  Quantization quant;  // quantized: int8 codes, real = scale * (q - zero_point)
};

struct Bundle {
  std::string root;  // the folder, resolved (realpath)
  Json manifest;
  std::string artifact;         // relative path, as the manifest names it
  std::string artifact_format;  // tflite | onnx | ncnn | mlpackage
  std::string target;
  std::vector<TensorSpec> inputs, outputs;
  Tolerance tolerance;
  // per parity sample, in manifest order: inputs as the artifact takes them (its layout and
  // dtype, int8 codes with int8 I/O), expected outputs as real values in the artifact's layout
  std::vector<NamedTensors> samples, expected;

  // The absolute path of a bundle file after checking that it stays inside the bundle and
  // that manifest `files` lists (and so verified) it; throws BundleError otherwise.
  std::string path(const std::string& rel) const;
};

// Reads and verifies the bundle in `dir`; throws BundleError with a one-line message.
Bundle load_bundle(const std::string& dir);

// The artifact's outputs as real values: an output whose outputs[].quantization says int8
// codes is dequantized with it (what runtimes/litert.py does before its statistics).
NamedTensors real_outputs(const Bundle& b, const NamedTensors& outputs);

}  // namespace ee
