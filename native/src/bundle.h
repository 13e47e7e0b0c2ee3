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

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;  // symbolic dimensions are -1
  std::string dtype;
};

struct Bundle {
  std::string root;  // the folder, resolved (realpath)
  Json manifest;
  std::string artifact;         // relative path, as the manifest names it
  std::string artifact_format;  // tflite | onnx | ncnn | mlpackage
  std::string target;
  std::vector<TensorSpec> inputs, outputs;
  Tolerance tolerance;
  std::vector<NamedTensors> samples, expected;  // per parity sample, in manifest order

  // The absolute path of a bundle file after checking that it stays inside the bundle and
  // that manifest `files` lists (and so verified) it; throws BundleError otherwise.
  std::string path(const std::string& rel) const;
};

// Reads and verifies the bundle in `dir`; throws BundleError with a one-line message.
Bundle load_bundle(const std::string& dir);

}  // namespace ee
