// What a runtime backend gives the runner: a loaded artifact that maps input tensors to output
// tensors by the manifest's names. One file per runtime implements open_<runtime>().
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "bundle.h"
#include "tensor.h"

namespace ee {

struct RunOptions {
  int threads = 0;  // 0: the runtime's default
};

class Backend {
 public:
  virtual ~Backend() = default;
  // Outputs by the manifest's output names, as the artifact gives them (int8 codes for an int8
  // output: real_outputs() dequantizes them with the manifest).
  virtual NamedTensors run(const NamedTensors& feeds) = 0;

  // The outputs' quantization as the artifact itself declares it (empty when the runtime does
  // not say); the runner checks the manifest against it.
  std::vector<std::pair<std::string, Quantization>> output_quantization;

  std::string device = "cpu";  // where it really ran (e.g. the Vulkan device's name)
  std::vector<std::pair<std::string, std::string>> details;  // key -> JSON-encoded value
  // Set when it ran elsewhere than its name says (ncnn on the CPU without Vulkan): not parity.
  std::string fallback;
};

// The runtime cannot run here at all (library missing, built without it): not executed.
class Unavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

std::unique_ptr<Backend> open_litert(const Bundle& b, const RunOptions& o);
// The same on a .tflite file alone (the JNI bridge: the app has read the bundle itself).
std::unique_ptr<Backend> open_litert_file(const std::string& path, const RunOptions& o);
std::unique_ptr<Backend> open_onnxruntime(const Bundle& b, const RunOptions& o);
std::unique_ptr<Backend> open_ncnn_vulkan(const Bundle& b, const RunOptions& o);

// Finds a shared library next to the running executable first, then in `fallback_dir`.
std::string library_path(const std::string& file, const std::string& fallback_dir);

}  // namespace ee
