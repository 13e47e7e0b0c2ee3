// Bundle reading. Every file named by the manifest is checked before it is used: the path
// must be relative, free of "..", inside the folder after resolving symlinks, and its sha256
// must equal the one in `files`.
#include "bundle.h"

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "sha256.h"

namespace ee {

namespace {

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string real(const std::string& p) {
  char buf[PATH_MAX];
  if (realpath(p.c_str(), buf) == nullptr) return "";
  return buf;
}

// The manifest's relative path joined to the bundle, or a BundleError when it could escape.
std::string inside(const std::string& root, const std::string& rel, const std::string& shown) {
  auto refuse = [&](const std::string& why) {
    throw BundleError(shown + "/manifest.json: path '" + rel + "' " + why +
                      "; bundle paths must stay inside the bundle folder");
  };
  if (rel.empty() || rel[0] == '/' || rel.find('\\') != std::string::npos ||
      rel.find('\0') != std::string::npos)
    refuse("is absolute or not a plain relative path, so it could lead outside the bundle");
  size_t start = 0;
  while (start <= rel.size()) {
    size_t end = rel.find('/', start);
    if (end == std::string::npos) end = rel.size();
    if (rel.compare(start, end - start, "..") == 0) refuse("contains '..', so it could lead outside the bundle");
    start = end + 1;
  }
  std::string full = root + "/" + rel;
  std::string r = real(full);
  if (r.empty()) throw BundleError(shown + "/" + rel + ": missing; the bundle is incomplete, "
                                   "re-create it with `edgeexport convert`");
  if (r.compare(0, root.size() + 1, root + "/") != 0) refuse("leads outside the bundle through a symlink");
  return r;
}

std::vector<int64_t> read_shape(const Json& j) {
  std::vector<int64_t> shape;
  for (const Json& d : j.items()) shape.push_back(d.is_number() ? d.as_int() : -1);
  return shape;
}

Quantization read_quantization(const Json& j) {
  Quantization q;
  q.quantized = j.at("quantized").as_bool();
  if (q.quantized) {
    q.scale = j.at("scale").as_number();
    q.zero_point = j.at("zero_point").as_int();
    if (!(q.scale > 0)) throw JsonError("quantization scale must be > 0");
  }
  return q;
}

std::vector<TensorSpec> read_specs(const Json& list, const char* key) {
  std::vector<TensorSpec> out;
  for (const Json& e : list.items()) {
    TensorSpec t;
    t.name = e.at("name").as_string();
    try {
      t.shape = read_shape(e.at("shape"));
      t.dtype = e.at("dtype").as_string();
      t.layout = e.at("layout").as_string();
      t.quant = read_quantization(e.at("quantization"));
    } catch (const JsonError& err) {
      throw JsonError(std::string(key) + " '" + t.name + "': " + err.what());
    }
    out.push_back(t);
  }
  return out;
}

const TensorSpec* find_spec(const std::vector<TensorSpec>& specs, const std::string& name) {
  for (const TensorSpec& s : specs)
    if (s.name == name) return &s;
  return nullptr;
}

// A parity entry must hold the tensor in the artifact's form (the contract's `parity[]`):
// inputs in the input's layout, shape and dtype (int8 codes iff the input is quantized),
// expected outputs as real values in the output's layout.
void check_parity_entry(const Json& e, const Tensor& t, const TensorSpec* spec, bool input) {
  std::string layout = e.at("layout").as_string();
  bool quantized = e.at("quantized").as_bool();
  std::string what = std::string(input ? "input" : "output") + " '" + e.at("tensor").as_string() + "'";
  if (spec == nullptr) throw JsonError(what + " is not in manifest " + (input ? "inputs" : "outputs"));
  if (layout != spec->layout)
    throw JsonError("stored as " + layout + " but the artifact's " + what + " is " + spec->layout);
  if (!input) {
    if (quantized) throw JsonError("expected outputs must be real values (quantized: false)");
    return;
  }
  if (quantized != spec->quant.quantized)
    throw JsonError(std::string("quantized: ") + (quantized ? "true" : "false") + " but the artifact's " +
                    what + " is " + (spec->quant.quantized ? "int8 codes" : "real values"));
  if (quantized && t.dtype != spec->dtype)
    throw JsonError("int8 codes stored as " + t.dtype + " but " + what + " takes " + spec->dtype);
  bool same = t.shape.size() == spec->shape.size();
  for (size_t i = 0; same && i < t.shape.size(); ++i)
    same = spec->shape[i] < 0 || spec->shape[i] == t.shape[i];
  if (!same) throw JsonError("shape " + shape_str(t.shape) + " but " + what + " is " + shape_str(spec->shape));
}

Tolerance read_tolerance(const Json& j) {
  Tolerance t;
  t.name = j.at("name").as_string();
  auto opt = [&](const char* key, bool& has, double& v) {
    const Json* x = j.find(key);
    has = x != nullptr && !x->is_null();
    if (has) v = x->as_number();
  };
  opt("max_rel_err", t.has_max_rel, t.max_rel_err);
  opt("min_cosine", t.has_min_cosine, t.min_cosine);
  opt("min_top1_agreement", t.has_min_top1, t.min_top1_agreement);
  return t;
}

}  // namespace

std::string Bundle::path(const std::string& rel) const {
  const Json* files = manifest.find("files");
  if (files == nullptr || files->find(rel) == nullptr)
    throw BundleError(root + "/" + rel + ": not listed in manifest.json `files`, so it cannot "
                      "be verified; re-create the bundle with `edgeexport convert`");
  return inside(root, rel, root);
}

Bundle load_bundle(const std::string& dir) {
  Bundle b;
  b.root = real(dir);
  if (b.root.empty()) throw BundleError(dir + ": no such folder; pass a bundle folder written by "
                                        "`edgeexport convert`");
  std::string mpath = b.root + "/manifest.json";
  std::FILE* probe = std::fopen(mpath.c_str(), "rb");
  if (probe == nullptr)
    throw BundleError(dir + ": not a bundle (no manifest.json); pass a folder written by "
                      "`edgeexport convert`");
  std::fclose(probe);
  try {
    b.manifest = Json::parse(read_text(mpath));
    const Json& m = b.manifest;
    // refused before anything else is read: other versions may mean other things by the keys
    const Json* version = m.find("schema_version");
    if (version == nullptr || !version->is_number() || version->as_number() != kSchemaVersion)
      throw BundleError(mpath + ": schema_version " +
                        (version == nullptr ? std::string("missing")
                         : version->is_number() ? json_number(version->as_number())
                         : version->is_string() ? json_quote(version->as_string()) : "not a number") +
                        ", this runner reads " + std::to_string(kSchemaVersion) +
                        "; re-create the bundle with the edgeexport this runner came with");
    b.artifact = m.at("artifact").as_string();
    b.artifact_format = m.at("artifact_format").as_string();
    b.target = m.at("target").as_string();
    b.inputs = read_specs(m.at("inputs"), "inputs");
    b.outputs = read_specs(m.at("outputs"), "outputs");
    b.tolerance = read_tolerance(m.at("tolerances"));
    m.at("files").members();
    m.at("parity").items();
  } catch (const JsonError& e) {
    throw BundleError(mpath + ": " + e.what() + "; re-create the bundle with `edgeexport "
                      "convert`");
  }
  // Every listed file must be inside the folder and unchanged since convert wrote it.
  for (const auto& f : b.manifest.at("files").members()) {
    std::string full = inside(b.root, f.first, b.root);
    std::string want = f.second.is_string() ? f.second.as_string() : "";
    std::string got;
    try {
      got = sha256_file(full);
    } catch (const std::exception& e) {
      throw BundleError(full + ": cannot be read (" + e.what() + ")");
    }
    if (got != want)
      throw BundleError(full + ": sha256 " + got.substr(0, 12) + "... differs from manifest.json's " +
                        want.substr(0, 12) + "... (the file changed after convert); re-create "
                        "the bundle with `edgeexport convert`");
  }
  b.path(b.artifact);  // the artifact itself must be covered by `files`
  // Parity tensors: raw little-endian bytes, one file per (sample, kind, tensor).
  std::map<long long, NamedTensors> in, out;
  for (const Json& e : b.manifest.at("parity").items()) {
    std::string rel, dtype;
    try {
      rel = e.at("path").as_string();
      Tensor t;
      t.dtype = dtype = e.at("dtype").as_string();
      t.shape = read_shape(e.at("shape"));
      if (dtype_size(dtype) == 0) throw JsonError("unsupported dtype '" + dtype + "'");
      std::string full = b.path(rel);
      std::string bytes = read_text(full);
      if (bytes.size() != t.count() * dtype_size(dtype))
        throw BundleError(full + ": " + std::to_string(bytes.size()) + " bytes, but shape " +
                          shape_str(t.shape) + " of " + dtype + " needs " +
                          std::to_string(t.count() * dtype_size(dtype)));
      t.data.assign(bytes.begin(), bytes.end());
      std::string kind = e.at("kind").as_string();
      bool input = kind == "input";
      check_parity_entry(e, t, find_spec(input ? b.inputs : b.outputs, e.at("tensor").as_string()), input);
      auto& dst = input ? in : out;
      dst[e.at("sample").as_int()].emplace_back(e.at("tensor").as_string(), std::move(t));
    } catch (const JsonError& err) {
      throw BundleError(mpath + ": bad parity entry '" + rel + "' (" + err.what() + ")");
    }
  }
  long long n = 0;
  for (const auto& s : in) n = std::max(n, s.first + 1);
  for (const auto& s : out) n = std::max(n, s.first + 1);
  if (n == 0) throw BundleError(mpath + ": no parity samples; re-create the bundle with "
                                "`edgeexport convert`");
  for (long long i = 0; i < n; ++i) {
    if (!in.count(i) || !out.count(i))
      throw BundleError(mpath + ": parity sample " + std::to_string(i) +
                        " lacks its inputs or expected outputs");
    for (const TensorSpec& spec : b.inputs)  // the artifact's inputs, as the manifest names them
      if (find_tensor(in[i], spec.name) == nullptr)
        throw BundleError(mpath + ": parity sample " + std::to_string(i) + " has no tensor for input '" +
                          spec.name + "'; re-create the bundle with `edgeexport convert`");
    b.samples.push_back(in[i]);
    b.expected.push_back(out[i]);
  }
  return b;
}

NamedTensors real_outputs(const Bundle& b, const NamedTensors& outputs) {
  NamedTensors real;
  for (const auto& o : outputs) {
    const TensorSpec* spec = find_spec(b.outputs, o.first);
    bool codes = o.second.dtype == "int8" || o.second.dtype == "uint8";
    if (spec != nullptr && spec->quant.quantized && codes)
      real.emplace_back(o.first, dequantize(o.second, spec->quant));
    else
      real.push_back(o);
  }
  return real;
}

}  // namespace ee
