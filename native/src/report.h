// One runtime's parity result, printed as `edgeexport validate` prints its table
// (commands.print_parity_table) or as JSON shaped like validate.parity.ParityResult.to_json.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "stats.h"

namespace ee {

struct ParityRow {
  std::string runtime;
  bool executed = false;
  std::string reason;  // empty: null
  std::string device;  // empty: null
  bool has_stats = false;
  ErrorStats stats;
  std::vector<std::pair<std::string, ErrorStats>> per_output;
  bool passed = false;
  std::vector<std::string> violations;
  Tolerance tolerance;
  bool has_latency = false;
  double latency_ms = 0;
  std::vector<std::pair<std::string, std::string>> details;  // key -> JSON-encoded value
};

struct BenchResult {
  int runs = 0;
  double load_ms = 0, first_ms = 0, median_ms = 0, p10_ms = 0, p90_ms = 0, min_ms = 0;
};

void print_parity_table(const std::vector<ParityRow>& rows);
std::string row_json(const ParityRow& r);
std::string bench_json(const BenchResult& b);
double percentile(std::vector<double> v, double q);  // numpy's default (linear) percentile

}  // namespace ee
