// Error statistics between expected (PyTorch) and actual (runtime) tensors and the tolerance
// verdict: the definitions of src/edgeexport/metrics.py (error_stats, merge, Tolerance).
#pragma once

#include <string>
#include <vector>

#include "tensor.h"

namespace ee {

struct ErrorStats {
  double max_abs_err = 0;
  double max_rel_err = 0;  // max |e - a| / (max(e) - min(e)), or / max|e| when e is constant
  double cosine = 1;
  double sqnr_db = 0;
  bool has_top1 = false;  // false when the last axis is 1 (metrics.py: None)
  double top1_agreement = 0;
};

// Throws std::runtime_error when the element counts differ (a reshape is allowed, as in numpy).
ErrorStats error_stats(const Tensor& expected, const Tensor& actual);

// Worst case over outputs, or over the samples of one output (`samples`: top-1 agreement is
// then the mean over samples instead of the minimum).
ErrorStats merge(const std::vector<ErrorStats>& stats, bool samples);

struct Tolerance {
  std::string name;
  bool has_max_rel = false, has_min_cosine = false, has_min_top1 = false;
  double max_rel_err = 0, min_cosine = 0, min_top1_agreement = 0;

  std::vector<std::string> violations(const ErrorStats& s) const;  // metrics.py's wording
};

// Python's format(v, spec) for the specs the reports use ('.2e', '.6f', '.3g', 'g', ...).
std::string pyformat(double v, const char* spec);

}  // namespace ee
