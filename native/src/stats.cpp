// Same arithmetic as metrics.py: tensors go to float64 first, norms and sums in float64.
#include "stats.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <stdexcept>

namespace ee {

namespace {

size_t argmax(const double* p, size_t n) {  // numpy: the first NaN wins, else the first maximum
  size_t best = 0;
  for (size_t i = 0; i < n; ++i) {
    if (std::isnan(p[i])) return i;
    if (p[i] > p[best]) best = i;
  }
  return best;
}

double nan_max(double acc, double v) { return std::isnan(acc) || std::isnan(v) ? NAN : std::max(acc, v); }
double nan_min(double acc, double v) { return std::isnan(acc) || std::isnan(v) ? NAN : std::min(acc, v); }

}  // namespace

ErrorStats error_stats(const Tensor& expected, const Tensor& actual) {
  if (expected.count() != actual.count())
    throw std::runtime_error("shape mismatch: expected " + shape_str(expected.shape) + ", got " +
                             shape_str(actual.shape));
  std::vector<double> e = expected.to_double(), a = actual.to_double();
  size_t n = e.size();
  ErrorStats s;
  double max_abs = 0, emax = -INFINITY, emin = INFINITY, absmax = 0;
  double dot = 0, ee = 0, aa = 0, noise = 0;
  bool nan_diff = false, nan_e = false;
  for (size_t i = 0; i < n; ++i) {
    double d = e[i] - a[i];
    double ad = std::fabs(d);
    if (std::isnan(ad)) nan_diff = true; else max_abs = std::max(max_abs, ad);
    if (std::isnan(e[i])) nan_e = true;
    emax = std::max(emax, e[i]);
    emin = std::min(emin, e[i]);
    absmax = std::max(absmax, std::fabs(e[i]));
    dot += e[i] * a[i];
    ee += e[i] * e[i];
    aa += a[i] * a[i];
    noise += d * d;
  }
  s.max_abs_err = n == 0 ? 0.0 : (nan_diff ? NAN : max_abs);
  double span = n == 0 ? 0.0 : (nan_e ? NAN : emax - emin);
  if (span == 0.0) span = n == 0 ? 0.0 : absmax;
  // as metrics.py: a NaN span is not > 0, so the ratio becomes 0 or inf there too
  s.max_rel_err = span > 0 ? s.max_abs_err / span
                           : (s.max_abs_err == 0 ? 0.0 : std::numeric_limits<double>::infinity());
  double ne = std::sqrt(ee), na = std::sqrt(aa);
  if (ne == 0.0 && na == 0.0) s.cosine = 1.0;
  else if (ne == 0.0 || na == 0.0) s.cosine = 0.0;
  else s.cosine = dot / (ne * na);
  double signal = ee;
  if (noise == 0) s.sqnr_db = INFINITY;
  else s.sqnr_db = signal > 0 ? 10 * std::log10(signal / noise) : -INFINITY;
  int64_t last = expected.shape.empty() ? 0 : expected.shape.back();
  if (!expected.shape.empty() && last > 1 && n > 0) {
    size_t rows = n / size_t(last), agree = 0;
    for (size_t r = 0; r < rows; ++r)
      agree += argmax(&e[r * last], size_t(last)) == argmax(&a[r * last], size_t(last));
    s.has_top1 = true;
    s.top1_agreement = double(agree) / double(rows);
  }
  return s;
}

ErrorStats merge(const std::vector<ErrorStats>& stats, bool samples) {
  ErrorStats m = stats.at(0);
  double top_sum = 0, top_min = INFINITY;
  size_t tops = 0;
  for (size_t i = 0; i < stats.size(); ++i) {
    const ErrorStats& s = stats[i];
    if (i > 0) {
      m.max_abs_err = nan_max(m.max_abs_err, s.max_abs_err);
      m.max_rel_err = nan_max(m.max_rel_err, s.max_rel_err);
      m.cosine = nan_min(m.cosine, s.cosine);
      m.sqnr_db = nan_min(m.sqnr_db, s.sqnr_db);
    }
    if (s.has_top1) {
      top_sum += s.top1_agreement;
      top_min = std::min(top_min, s.top1_agreement);
      ++tops;
    }
  }
  m.has_top1 = tops > 0;
  m.top1_agreement = tops == 0 ? 0 : (samples ? top_sum / double(tops) : top_min);
  return m;
}

std::string pyformat(double v, const char* spec) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  std::string fmt = std::string("%") + spec;
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt.c_str(), v);
  return buf;
}

std::vector<std::string> Tolerance::violations(const ErrorStats& s) const {
  std::vector<std::string> out;
  if (has_max_rel && !(s.max_rel_err <= max_rel_err))
    out.push_back("max_rel_err " + pyformat(s.max_rel_err, ".3g") + " > " +
                  pyformat(max_rel_err, "g"));
  if (has_min_cosine && !(s.cosine >= min_cosine))
    out.push_back("cosine " + pyformat(s.cosine, ".6f") + " < " + pyformat(min_cosine, "g"));
  if (has_min_top1 && s.has_top1 && !(s.top1_agreement >= min_top1_agreement))
    out.push_back("top-1 agreement " + pyformat(s.top1_agreement, ".3f") + " < " +
                  pyformat(min_top1_agreement, "g"));
  return out;
}

}  // namespace ee
