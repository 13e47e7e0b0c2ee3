// edgeexport-run-native BUNDLE [--bench N] [--json] [--threads N]: verifies a bundle, runs its
// parity samples on the platform runtime and judges them against the manifest's tolerances.
// Exit codes: 0 parity passed, 3 parity failed (or the runtime failed to run the artifact),
// 2 bad usage or a bad/tampered bundle, 1 the runtime cannot run here (not executed).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "backend.h"
#include "bundle.h"
#include "report.h"

namespace ee {

std::string library_path(const std::string& file, const std::string& fallback_dir) {
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    exe[n] = 0;
    std::string dir(exe);
    dir = dir.substr(0, dir.rfind('/'));
    std::string here = dir + "/" + file;
    if (access(here.c_str(), R_OK) == 0) return here;
  }
  return fallback_dir + "/" + file;
}

#ifndef EE_WITH_LITERT
std::unique_ptr<Backend> open_litert(const Bundle&, const RunOptions&) {
  throw Unavailable("this runner was built without LiteRT (make native finds libLiteRt.so in "
                    "the ai-edge-litert wheel)");
}
#endif
#ifndef EE_WITH_NCNN
std::unique_ptr<Backend> open_ncnn_vulkan(const Bundle&, const RunOptions&) {
  throw Unavailable("this runner was built without ncnn (scripts/build-ncnn.sh builds it)");
}
#endif

}  // namespace ee

namespace {

using namespace ee;
using Clock = std::chrono::steady_clock;

const char* kUsage = "usage: edgeexport-run-native BUNDLE [--bench N] [--json] [--threads N]";

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

struct Args {
  std::string bundle;
  int bench = 0;
  bool json = false;
  RunOptions run;
};

int to_int(const char* s, const char* flag) {
  char* end = nullptr;
  long v = std::strtol(s, &end, 10);
  if (end == s || *end != 0 || v < 0 || v > 1000000) {
    std::fprintf(stderr, "edgeexport-run-native: %s needs a non-negative integer, got '%s'\n", flag, s);
    std::exit(2);
  }
  return int(v);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    if ((s == "--bench" || s == "--threads") && i + 1 < argc) {
      int v = to_int(argv[++i], s.c_str());
      (s == "--bench" ? a.bench : a.run.threads) = v;
    } else if (s == "--json") {
      a.json = true;
    } else if (s == "-h" || s == "--help") {
      std::printf("%s\n", kUsage);
      std::exit(0);
    } else if (!s.empty() && s[0] != '-' && a.bundle.empty()) {
      a.bundle = s;
    } else {
      std::fprintf(stderr, "edgeexport-run-native: unexpected argument '%s'; %s\n", s.c_str(), kUsage);
      std::exit(2);
    }
  }
  if (a.bundle.empty()) {
    std::fprintf(stderr, "%s\n", kUsage);
    std::exit(2);
  }
  return a;
}

// Runtimes print their set-up log on stderr ("Created TensorFlow Lite XNNPACK delegate", the
// Vulkan device table); it goes into the result's details so the command's output stays the
// table (EDGEEXPORT_NATIVE_VERBOSE=1 leaves stderr alone).
class StderrCapture {
 public:
  StderrCapture() {
    const char* v = std::getenv("EDGEEXPORT_NATIVE_VERBOSE");
    if (v && *v && std::strcmp(v, "0") != 0) return;
    std::fflush(stderr);
    tmp_ = std::tmpfile();
    if (tmp_ == nullptr) return;
    saved_ = dup(2);
    dup2(fileno(tmp_), 2);
  }
  ~StderrCapture() { finish(); }
  std::string finish() {
    std::string text;
    if (saved_ < 0) return text;
    std::fflush(stderr);
    dup2(saved_, 2);
    close(saved_);
    saved_ = -1;
    std::rewind(tmp_);
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, tmp_)) > 0) text.append(buf, n);
    std::fclose(tmp_);
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    return text;
  }

 private:
  FILE* tmp_ = nullptr;
  int saved_ = -1;
};

struct Choice {
  const char* runtime;
  std::unique_ptr<Backend> (*open)(const Bundle&, const RunOptions&);
};

Choice choose(const std::string& format) {
  if (format == "tflite") return {"litert-native", open_litert};
  if (format == "onnx") return {"onnxruntime-native", open_onnxruntime};
  if (format == "ncnn") return {"ncnn-native-vulkan", open_ncnn_vulkan};
  return {"native", nullptr};
}

// The manifest's outputs[].quantization must be the artifact's own: the runner dequantizes with
// the manifest (as an app does), so a disagreement would silently skew every statistic.
void check_quantization(const Bundle& b, const Backend& backend) {
  for (const auto& oq : backend.output_quantization) {
    auto spec = std::find_if(b.outputs.begin(), b.outputs.end(),
                             [&](const TensorSpec& t) { return t.name == oq.first; });
    if (spec == b.outputs.end()) continue;
    const Quantization &m = spec->quant, &a = oq.second;
    bool same = m.quantized == a.quantized &&
                (!m.quantized || (float(m.scale) == float(a.scale) && m.zero_point == a.zero_point));
    auto text = [](const Quantization& q) {
      return q.quantized ? "scale " + pyformat(q.scale, "g") + ", zero_point " + std::to_string(q.zero_point)
                         : std::string("not quantized");
    };
    if (!same)
      throw std::runtime_error("manifest.json outputs '" + oq.first + "' quantization (" + text(m) +
                               ") differs from the artifact's (" + text(a) + ")");
  }
}

// Parity on every sample, as validate.parity.check_runtime does it; int8 outputs are
// dequantized with the manifest first (expected outputs are real values).
void judge(const Bundle& b, const std::vector<NamedTensors>& outputs, ParityRow& row) {
  std::vector<std::pair<std::string, std::vector<ErrorStats>>> per_output;
  std::vector<std::string> missing;
  for (size_t i = 0; i < outputs.size(); ++i) {
    NamedTensors real = real_outputs(b, outputs[i]);
    for (const auto& want : b.expected[i]) {
      const Tensor* got = find_tensor(real, want.first);
      if (got == nullptr) {
        if (std::find(missing.begin(), missing.end(), want.first) == missing.end())
          missing.push_back(want.first);
        continue;
      }
      auto it = std::find_if(per_output.begin(), per_output.end(),
                             [&](const auto& p) { return p.first == want.first; });
      if (it == per_output.end()) {
        per_output.push_back({want.first, {}});
        it = per_output.end() - 1;
      }
      it->second.push_back(error_stats(want.second, *got));
    }
  }
  std::sort(missing.begin(), missing.end());
  for (const auto& m : missing) row.violations.push_back("output '" + m + "' missing");
  std::vector<ErrorStats> merged;
  for (const auto& p : per_output) {
    row.per_output.push_back({p.first, merge(p.second, true)});
    merged.push_back(row.per_output.back().second);
  }
  if (!merged.empty()) {
    row.has_stats = true;
    row.stats = merge(merged, false);
    for (const auto& v : b.tolerance.violations(row.stats)) row.violations.push_back(v);
  }
  row.passed = row.violations.empty();
}

std::string arch() {
#if defined(__aarch64__)
  return "aarch64";
#elif defined(__x86_64__)
  return "x86_64";
#else
  return "unknown";
#endif
}

int run(const Args& args) {
  Bundle bundle = load_bundle(args.bundle);  // BundleError -> exit 2 in main
  Choice choice = choose(bundle.artifact_format);
  ParityRow row;
  row.runtime = choice.runtime;
  row.tolerance = bundle.tolerance;
  row.details.push_back({"runner_arch", "\"" + arch() + "\""});
  BenchResult bench;
  std::unique_ptr<Backend> backend;
  StderrCapture capture;
  try {
    if (choice.open == nullptr)
      throw Unavailable("no native runtime executes " + bundle.artifact_format + " artifacts");
    Clock::time_point t0 = Clock::now();
    backend = choice.open(bundle, args.run);
    bench.load_ms = ms_since(t0);
    row.device = backend->device;
    for (const auto& d : backend->details) row.details.push_back(d);
    if (!backend->fallback.empty()) throw Unavailable(backend->fallback);
    check_quantization(bundle, *backend);
  } catch (const Unavailable& e) {
    row.executed = false;
    row.reason = e.what();
  } catch (const std::exception& e) {
    row.executed = true;
    row.reason = std::string("failed to run: ") + e.what();
    row.violations.push_back("runtime error");
    backend.reset();  // loaded, but not to be run (the manifest disagrees with the artifact)
  }
  if (backend && backend->fallback.empty()) {
    row.executed = true;
    std::vector<NamedTensors> outputs;
    try {
      for (size_t i = 0; i < bundle.samples.size(); ++i) {
        Clock::time_point t = Clock::now();
        outputs.push_back(backend->run(bundle.samples[i]));
        if (i == 0) bench.first_ms = ms_since(t);
      }
      judge(bundle, outputs, row);
      std::vector<double> times;  // validate's latency: median of 3 runs on sample 0
      for (int k = 0; k < 3; ++k) {
        Clock::time_point t = Clock::now();
        backend->run(bundle.samples[0]);
        times.push_back(ms_since(t));
      }
      row.has_latency = true;
      row.latency_ms = std::round(percentile(times, 50) * 1000) / 1000;
      if (args.bench > 0) {
        times.clear();
        for (int k = 0; k < args.bench; ++k) {
          Clock::time_point t = Clock::now();
          backend->run(bundle.samples[0]);
          times.push_back(ms_since(t));
        }
        bench.runs = args.bench;
        bench.median_ms = percentile(times, 50);
        bench.p10_ms = percentile(times, 10);
        bench.p90_ms = percentile(times, 90);
        bench.min_ms = percentile(times, 0);
      }
    } catch (const std::exception& e) {
      row.reason = std::string("failed to run: ") + e.what();
      row.passed = false;
      row.has_stats = false;
      row.violations = {"runtime error"};
    }
  }
  backend.reset();  // its teardown logs too
  std::string log = capture.finish();
  if (!log.empty()) row.details.push_back({"native_log", json_quote(log)});
  int code = !row.executed ? 1 : (row.passed ? 0 : 3);
  if (args.json) {
    std::string out = "{\"ok\": " + std::string(code == 0 ? "true" : "false") +
                      ", \"exit_code\": " + std::to_string(code) +
                      ", \"bundle\": " + json_quote(bundle.root) + ", \"target\": " +
                      json_quote(bundle.target) + ", \"parity\": [" + row_json(row) + "]";
    if (bench.runs > 0) out += ", \"bench\": " + bench_json(bench);
    std::printf("%s}\n", out.c_str());
    return code;
  }
  print_parity_table({row});
  if (bench.runs > 0)
    std::printf("latency (%s, %s, %d runs): load %.2f ms, first run %.2f ms, median %.3f ms, "
                "p10 %.3f ms, p90 %.3f ms\n", row.runtime.c_str(), row.device.c_str(), bench.runs,
                bench.load_ms, bench.first_ms, bench.median_ms, bench.p10_ms, bench.p90_ms);
  std::printf("parity: %s\n", code == 0 ? "PASSED" : (code == 1 ? "NOT EXECUTED" : "FAILED"));
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  Args args = parse(argc, argv);
  try {
    return run(args);
  } catch (const BundleError& e) {
    std::fprintf(stderr, "edgeexport-run-native: %s\n", e.what());
    return 2;
  }
}
