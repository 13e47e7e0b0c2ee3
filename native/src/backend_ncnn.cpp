// ncnn on a Vulkan device through ncnn's C API (c_api.h), with libncnn built from the ncnn
// sdist (scripts/build-ncnn.sh; the PyPI wheel ships no library). The C API has no device
// query, so the device count and name come from ncnn's gpu.h of the same build.
// Read for ncnn 1.0.20261020. Options mirror runtimes/ncnn.py: fp32 turns every
// reduced-precision path off, fp16 turns fp16 storage/packing/arithmetic on.
#include <glob.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include <ncnn/c_api.h>
#include <ncnn/gpu.h>

#include "backend.h"
#include "json.h"

namespace ee {

namespace {

// As configure_vulkan_env() in runtimes/ncnn.py: a configured ICD or a real GPU is left to the
// Vulkan loader; otherwise lavapipe is pinned, so that machines without a GPU have a device.
std::string configure_vulkan_env() {
  const char* off = std::getenv("EDGEEXPORT_DISABLE_VULKAN");
  if (off && *off && std::strcmp(off, "0") != 0) {
    setenv("VK_ICD_FILENAMES", "/nonexistent/edgeexport-vulkan-disabled.json", 1);
    setenv("VK_DRIVER_FILES", "/nonexistent/edgeexport-vulkan-disabled.json", 1);
    return "disabled by EDGEEXPORT_DISABLE_VULKAN";
  }
  for (const char* var : {"VK_ICD_FILENAMES", "VK_DRIVER_FILES"}) {
    const char* v = std::getenv(var);
    if (v && *v) return std::string(var) + "=" + v;
  }
  auto first = [](const char* pattern) {
    glob_t g;
    std::string hit;
    if (glob(pattern, 0, nullptr, &g) == 0 && g.gl_pathc > 0) hit = g.gl_pathv[0];
    globfree(&g);
    return hit;
  };
  if (!first("/dev/dri/renderD*").empty() || !first("/dev/nvidia0").empty())
    return "system Vulkan loader (GPU device present)";
  for (const char* dir : {"/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d", "/usr/local/share/vulkan/icd.d"}) {
    std::string icd = first((std::string(dir) + "/lvp_icd*.json").c_str());
    if (!icd.empty()) {
      setenv("VK_ICD_FILENAMES", icd.c_str(), 1);
      setenv("VK_DRIVER_FILES", icd.c_str(), 1);
      return "lavapipe pinned (" + icd + ")";
    }
  }
  return "system Vulkan loader (no GPU, lavapipe not installed)";
}

struct Blob {
  std::string name, blob, feed;  // feed: float32, or int32 (ncnn's Embed reads int32 bits)
  std::vector<int64_t> shape;     // inputs: ncnn_shape (no batch); outputs: the IR shape
};

std::vector<int64_t> ints(const Json& j) {
  std::vector<int64_t> out;
  for (const Json& d : j.items()) out.push_back(d.as_int());
  return out;
}

class NcnnVulkan : public Backend {
 public:
  NcnnVulkan(const Bundle& b, const RunOptions& o) {
    std::string param = b.path(b.artifact);
    std::string stem = b.artifact.substr(0, b.artifact.rfind('.'));
    std::string weights = b.path(stem + ".bin");
    Json io;
    try {
      io = Json::parse(read_file(b.path(stem + ".io.json")));
      for (const Json& e : io.at("inputs").items())
        inputs_.push_back({e.at("name").as_string(), e.at("blob").as_string(),
                           e.find("feed") ? e.at("feed").as_string() : "float32", ints(e.at("ncnn_shape"))});
      for (const Json& e : io.at("outputs").items())
        outputs_.push_back({e.at("name").as_string(), e.at("blob").as_string(), "float32", ints(e.at("shape"))});
    } catch (const JsonError& e) {
      throw BundleError(b.root + "/" + stem + ".io.json: " + e.what());
    }
    const Json* prec = io.find("precision");
    std::string precision = prec && prec->is_string() ? prec->as_string() : "fp32";
    bool fp16 = precision == "fp16";

    std::string choice = configure_vulkan_env();
    int gpus = ncnn::get_gpu_count();
    details.push_back({"vulkan_driver_choice", json_quote(choice)});
    details.push_back({"precision", json_quote(precision)});
    details.push_back({"fp16_storage", fp16 ? "true" : "false"});
    details.push_back({"ncnn", json_quote(ncnn_version())});
    details.push_back({"api", json_quote("ncnn C API (c_api.h) + gpu.h for the device")});
    if (gpus == 0) {
      fallback = "Vulkan unavailable: no Vulkan device (the Vulkan instance could not start); "
                 "not Vulkan parity (driver choice: " + choice + ")";
      return;
    }
    int index = ncnn::get_default_gpu_index();
    const ncnn::GpuInfo& info = ncnn::get_gpu_info(index);
    device = info.device_name();

    ncnn_option_t opt = ncnn_option_create();
    ncnn_option_set_use_vulkan_compute(opt, 1);
    ncnn_option_set_use_fp16_storage(opt, fp16);
    ncnn_option_set_use_fp16_packed(opt, fp16);
    ncnn_option_set_use_fp16_arithmetic(opt, fp16);
    ncnn_option_set_use_bf16_storage(opt, 0);
    if (o.threads > 0) ncnn_option_set_num_threads(opt, o.threads);
    net_ = ncnn_net_create();
    ncnn_net_set_option(net_, opt);
    ncnn_option_destroy(opt);
    ncnn_net_set_vulkan_device(net_, index);
    if (ncnn_net_load_param(net_, param.c_str()) != 0) throw std::runtime_error("ncnn could not parse " + param);
    if (ncnn_net_load_model(net_, weights.c_str()) != 0) throw std::runtime_error("ncnn could not load " + weights);
    // ncnn turns Vulkan off quietly when the device cannot run the net: that is not GPU parity
    if (!ncnn_option_get_use_vulkan_compute(ncnn_net_get_option(net_)))
      fallback = "Vulkan unavailable: ncnn turned Vulkan compute off while loading; not Vulkan parity";
    static const char* kinds[] = {"discrete", "integrated", "virtual", "cpu"};
    int type = info.type();
    details.push_back({"vulkan_device",
                       "{\"index\": " + std::to_string(index) + ", \"name\": " + json_quote(device) +
                           ", \"type\": " + json_quote(type >= 0 && type < 4 ? kinds[type] : std::to_string(type)) +
                           ", \"api_version\": " + std::to_string(info.api_version()) +
                           ", \"driver_version\": " + std::to_string(info.driver_version()) + "}"});
  }

  ~NcnnVulkan() override {
    if (net_) ncnn_net_destroy(net_);
    ncnn::destroy_gpu_instance();  // before exit: the driver's threads must not outlive it
  }

  NamedTensors run(const NamedTensors& feeds) override {
    ncnn_extractor_t ex = ncnn_extractor_create(net_);
    NamedTensors result;
    try {
      for (size_t i = 0; i < inputs_.size(); ++i) feed(ex, inputs_[i], feeds, i);
      for (const Blob& out : outputs_) result.emplace_back(out.name, extract(ex, out));
    } catch (...) {
      ncnn_extractor_destroy(ex);
      throw;
    }
    ncnn_extractor_destroy(ex);
    return result;
  }

 private:
  ncnn_net_t net_ = nullptr;
  std::vector<Blob> inputs_, outputs_;

  static std::string read_file(const std::string& path) {
    std::string s;
    if (FILE* f = std::fopen(path.c_str(), "rb")) {
      char buf[4096];
      size_t n;
      while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
      std::fclose(f);
    }
    return s;
  }

  static void feed(ncnn_extractor_t ex, const Blob& in, const NamedTensors& feeds, size_t i) {
    const Tensor* src = find_tensor(feeds, in.name);
    if (src == nullptr && i < feeds.size()) src = &feeds[i].second;  // as runtimes/ncnn.py
    if (src == nullptr) throw std::runtime_error("missing input '" + in.name + "'");
    // int32 ids travel as their bit pattern in a float32 Mat
    Tensor t = src->cast(in.feed == "int32" ? "int32" : "float32");
    const std::vector<int64_t>& s = in.shape;
    size_t n = 1;
    for (int64_t d : s) n *= size_t(d);
    if (n != t.count()) throw std::runtime_error("input '" + in.name + "' does not fit ncnn shape " + shape_str(s));
    ncnn_mat_t m;
    switch (s.size()) {
      case 1: m = ncnn_mat_create_1d(int(s[0]), nullptr); break;
      case 2: m = ncnn_mat_create_2d(int(s[1]), int(s[0]), nullptr); break;
      case 3: m = ncnn_mat_create_3d(int(s[2]), int(s[1]), int(s[0]), nullptr); break;
      case 4: m = ncnn_mat_create_4d(int(s[3]), int(s[2]), int(s[1]), int(s[0]), nullptr); break;
      default: throw std::runtime_error("ncnn takes 1 to 4 dimensions, '" + in.name + "' has " + std::to_string(s.size()));
    }
    copy_channels(static_cast<uint8_t*>(ncnn_mat_get_data(m)), t.data.data(), m, true);
    int rc = ncnn_extractor_input(ex, in.blob.c_str(), m);
    ncnn_mat_destroy(m);  // the extractor keeps its own reference
    if (rc != 0) throw std::runtime_error("ncnn rejected input blob '" + in.blob + "'");
  }

  static Tensor extract(ncnn_extractor_t ex, const Blob& out) {
    ncnn_mat_t m = nullptr;
    int rc = ncnn_extractor_extract(ex, out.blob.c_str(), &m);
    if (rc != 0 || m == nullptr)
      throw std::runtime_error("ncnn failed to compute blob '" + out.blob + "' (error " + std::to_string(rc) + ")");
    Tensor t = make_tensor("float32", out.shape);
    try {
      if (ncnn_mat_get_elemsize(m) != 4) throw std::runtime_error("ncnn returned a non-float32 blob '" + out.blob + "'");
      size_t n = size_t(ncnn_mat_get_w(m)) * ncnn_mat_get_h(m) * ncnn_mat_get_d(m) * ncnn_mat_get_c(m);
      if (n != t.count()) throw std::runtime_error("blob '" + out.blob + "' has " + std::to_string(n) +
                                                   " values, the output " + shape_str(out.shape) + " needs " +
                                                   std::to_string(t.count()));
      copy_channels(t.data.data(), static_cast<uint8_t*>(ncnn_mat_get_data(m)), m, false);
    } catch (...) {
      ncnn_mat_destroy(m);
      throw;
    }
    ncnn_mat_destroy(m);
    return t;
  }

  // A Mat stores each channel at a `cstep`-element stride (aligned); tensors are dense.
  static void copy_channels(uint8_t* dst, const uint8_t* src, ncnn_mat_t m, bool into_mat) {
    size_t per = size_t(ncnn_mat_get_w(m)) * ncnn_mat_get_h(m) * ncnn_mat_get_d(m) * 4;
    size_t step = ncnn_mat_get_cstep(m) * 4;
    int c = ncnn_mat_get_dims(m) >= 3 ? ncnn_mat_get_c(m) : 1;
    for (int k = 0; k < c; ++k) {
      if (into_mat) std::memcpy(dst + k * step, src + k * per, per);
      else std::memcpy(dst + k * per, src + k * step, per);
    }
  }
};

}  // namespace

std::unique_ptr<Backend> open_ncnn_vulkan(const Bundle& b, const RunOptions& o) {
  return std::make_unique<NcnnVulkan>(b, o);
}

}  // namespace ee
