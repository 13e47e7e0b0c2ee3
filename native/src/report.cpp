// Text and JSON output. Column formats follow commands.print_parity_table exactly, so that
// the native table can be read next to the Python one.
#include "report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "json.h"

namespace ee {

namespace {

std::string stats_json(const ErrorStats& s) {
  return "{\"max_abs_err\": " + json_number(s.max_abs_err) +
         ", \"max_rel_err\": " + json_number(s.max_rel_err) +
         ", \"cosine\": " + json_number(s.cosine) + ", \"sqnr_db\": " + json_number(s.sqnr_db) +
         ", \"top1_agreement\": " + (s.has_top1 ? json_number(s.top1_agreement) : "null") + "}";
}

std::string tolerance_json(const Tolerance& t) {
  std::string out = "{\"name\": " + json_quote(t.name);
  if (t.has_max_rel) out += ", \"max_rel_err\": " + json_number(t.max_rel_err);
  if (t.has_min_cosine) out += ", \"min_cosine\": " + json_number(t.min_cosine);
  if (t.has_min_top1) out += ", \"min_top1_agreement\": " + json_number(t.min_top1_agreement);
  return out + "}";
}

std::string opt_string(const std::string& s) { return s.empty() ? "null" : json_quote(s); }

}  // namespace

void print_parity_table(const std::vector<ParityRow>& rows) {
  std::vector<std::vector<std::string>> cells = {
      {"runtime", "device", "executed", "max_abs_err", "max_rel_err", "cosine", "top1",
       "latency_ms", "result"}};
  for (const ParityRow& r : rows) {
    auto f = [&](bool has, double v, const char* spec) { return has ? pyformat(v, spec) : "-"; };
    std::string result;
    if (!r.executed) {
      result = "not executed: " + r.reason;
    } else if (r.passed) {
      result = "passed";
    } else {
      result = "FAILED: ";
      for (size_t i = 0; i < r.violations.size(); ++i) result += (i ? "; " : "") + r.violations[i];
    }
    cells.push_back({r.runtime, r.device.empty() ? "-" : r.device, r.executed ? "yes" : "no",
                     f(r.has_stats, r.stats.max_abs_err, ".2e"),
                     f(r.has_stats, r.stats.max_rel_err, ".2e"),
                     f(r.has_stats, r.stats.cosine, ".6f"),
                     f(r.has_stats && r.stats.has_top1, r.stats.top1_agreement, ".2f"),
                     f(r.has_latency, r.latency_ms, ".2f"), result});
  }
  size_t ncol = cells[0].size();
  std::vector<size_t> width(ncol - 1, 0);
  for (const auto& row : cells)
    for (size_t i = 0; i + 1 < ncol; ++i) width[i] = std::max(width[i], row[i].size());
  for (const auto& row : cells) {
    std::string line = "  ";
    for (size_t i = 0; i + 1 < ncol; ++i)
      line += (i ? "  " : "") + row[i] + std::string(width[i] - row[i].size(), ' ');
    std::printf("%s  %s\n", line.c_str(), row[ncol - 1].c_str());
  }
}

std::string row_json(const ParityRow& r) {
  std::string o = "{\"runtime\": " + json_quote(r.runtime) +
                  ", \"executed\": " + (r.executed ? "true" : "false") +
                  ", \"reason\": " + opt_string(r.reason) + ", \"device\": " + opt_string(r.device);
  const ErrorStats& s = r.stats;
  auto num = [&](bool has, double v) { return has ? json_number(v) : std::string("null"); };
  o += ", \"max_abs_err\": " + num(r.has_stats, s.max_abs_err) +
       ", \"max_rel_err\": " + num(r.has_stats, s.max_rel_err) +
       ", \"cosine\": " + num(r.has_stats, s.cosine) + ", \"sqnr_db\": " + num(r.has_stats, s.sqnr_db) +
       ", \"top1_agreement\": " + num(r.has_stats && s.has_top1, s.top1_agreement);
  o += std::string(", \"passed\": ") + (r.passed ? "true" : "false") + ", \"violations\": [";
  for (size_t i = 0; i < r.violations.size(); ++i) o += (i ? ", " : "") + json_quote(r.violations[i]);
  o += "], \"tolerance\": " + tolerance_json(r.tolerance) +
       ", \"latency_ms\": " + num(r.has_latency, r.latency_ms) + ", \"per_output\": {";
  for (size_t i = 0; i < r.per_output.size(); ++i)
    o += (i ? ", " : "") + json_quote(r.per_output[i].first) + ": " + stats_json(r.per_output[i].second);
  o += "}, \"details\": {";
  for (size_t i = 0; i < r.details.size(); ++i)
    o += (i ? ", " : "") + json_quote(r.details[i].first) + ": " + r.details[i].second;
  return o + "}}";
}

std::string bench_json(const BenchResult& b) {
  return "{\"runs\": " + std::to_string(b.runs) + ", \"load_ms\": " + json_number(b.load_ms) +
         ", \"first_ms\": " + json_number(b.first_ms) + ", \"median_ms\": " + json_number(b.median_ms) +
         ", \"p10_ms\": " + json_number(b.p10_ms) + ", \"p90_ms\": " + json_number(b.p90_ms) +
         ", \"min_ms\": " + json_number(b.min_ms) + "}";
}

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  double pos = q / 100.0 * double(v.size() - 1);
  size_t lo = size_t(std::floor(pos)), hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - double(lo));
}

}  // namespace ee
