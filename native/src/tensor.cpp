// Element access by dtype name; the runner only runs on little-endian hosts (x86_64, aarch64),
// so the bundle's little-endian bytes are used in place.
#include "tensor.h"

#include <cmath>
#include <cstring>
#include <stdexcept>

namespace ee {

static_assert(sizeof(float) == 4 && sizeof(double) == 8, "IEEE-754 float and double expected");
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the bundle's tensors are little-endian; this runner reads them in place"
#endif

size_t dtype_size(const std::string& d) {
  if (d == "float32" || d == "int32" || d == "uint32") return 4;
  if (d == "float64" || d == "int64" || d == "uint64") return 8;
  if (d == "float16" || d == "int16" || d == "uint16") return 2;
  if (d == "int8" || d == "uint8" || d == "bool") return 1;
  return 0;
}

size_t Tensor::count() const {
  size_t n = 1;
  for (int64_t d : shape) n *= size_t(d < 0 ? 0 : d);
  return n;
}

float half_to_float(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16, exp = (h >> 10) & 0x1F, man = h & 0x3FF;
  uint32_t bits;
  if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (man << 13);  // inf / nan
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (man << 13);
  } else if (man == 0) {
    bits = sign;
  } else {  // subnormal half: normalize
    int e = -1;
    do { ++e; man <<= 1; } while ((man & 0x400) == 0);
    bits = sign | uint32_t(112 - e) << 23 | ((man & 0x3FF) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t float_to_half(float f) {  // round to nearest even, as numpy's astype(float16)
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint16_t sign = uint16_t((x >> 16) & 0x8000);
  uint32_t absx = x & 0x7FFFFFFFu;
  if (absx >= 0x7F800000u) return sign | 0x7C00 | (absx > 0x7F800000u ? 0x200 : 0);
  if (absx >= 0x477FF000u) return sign | 0x7C00;  // rounds past the largest half
  if (absx < 0x38800000u) {                        // subnormal half (or zero)
    float a;
    std::memcpy(&a, &absx, 4);
    return sign | uint16_t(std::nearbyint(a * 16777216.0f));  // a / 2^-24
  }
  uint32_t mant = absx + 0xC8000FFFu + ((absx >> 13) & 1);  // rebias exponent, round half even
  return sign | uint16_t(mant >> 13);
}

namespace {

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

double element(const std::string& d, const uint8_t* p) {
  if (d == "float32") return load<float>(p);
  if (d == "float64") return load<double>(p);
  if (d == "float16") return half_to_float(load<uint16_t>(p));
  if (d == "int8") return load<int8_t>(p);
  if (d == "uint8") return load<uint8_t>(p);
  if (d == "int16") return load<int16_t>(p);
  if (d == "uint16") return load<uint16_t>(p);
  if (d == "int32") return load<int32_t>(p);
  if (d == "uint32") return load<uint32_t>(p);
  if (d == "int64") return double(load<int64_t>(p));
  if (d == "uint64") return double(load<uint64_t>(p));
  if (d == "bool") return load<uint8_t>(p) != 0 ? 1.0 : 0.0;
  throw std::runtime_error("unsupported dtype '" + d + "'");
}

bool is_int(const std::string& d) { return d.find("int") != std::string::npos; }

int64_t int_element(const std::string& d, const uint8_t* p) {
  if (d == "int64") return load<int64_t>(p);
  if (d == "uint64") return int64_t(load<uint64_t>(p));
  return int64_t(element(d, p));
}

template <typename T>
void store(uint8_t* p, T v) {
  std::memcpy(p, &v, sizeof(T));
}

void put_int(const std::string& d, uint8_t* p, int64_t v) {  // wraps like numpy's astype
  if (d == "int8") store(p, int8_t(v));
  else if (d == "uint8") store(p, uint8_t(v));
  else if (d == "int16") store(p, int16_t(v));
  else if (d == "uint16") store(p, uint16_t(v));
  else if (d == "int32") store(p, int32_t(v));
  else if (d == "uint32") store(p, uint32_t(v));
  else if (d == "int64") store(p, int64_t(v));
  else if (d == "uint64") store(p, uint64_t(v));
}

}  // namespace

std::vector<double> Tensor::to_double() const {
  size_t n = count(), w = dtype_size(dtype);
  if (w == 0) throw std::runtime_error("unsupported dtype '" + dtype + "'");
  std::vector<double> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = element(dtype, data.data() + i * w);
  return out;
}

Tensor Tensor::cast(const std::string& to) const {
  if (to == dtype) return *this;
  Tensor out = make_tensor(to, shape);
  size_t n = count(), wi = dtype_size(dtype), wo = dtype_size(to);
  if (wi == 0 || wo == 0) throw std::runtime_error("cannot cast " + dtype + " to " + to);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* src = data.data() + i * wi;
    uint8_t* dst = out.data.data() + i * wo;
    if (is_int(to) && is_int(dtype)) {
      put_int(to, dst, int_element(dtype, src));
      continue;
    }
    double v = element(dtype, src);
    if (to == "float32") store(dst, float(v));
    else if (to == "float64") store(dst, v);
    else if (to == "float16") store(dst, float_to_half(float(v)));
    else if (to == "bool") store(dst, uint8_t(v != 0));
    else put_int(to, dst, std::isfinite(v) ? int64_t(v) : 0);
  }
  return out;
}

Tensor make_tensor(const std::string& dtype, const std::vector<int64_t>& shape) {
  Tensor t;
  t.dtype = dtype;
  t.shape = shape;
  t.data.assign(t.count() * dtype_size(dtype), 0);
  return t;
}

Tensor dequantize(const Tensor& t, const Quantization& q) {
  std::vector<double> v = t.to_double();
  Tensor out = make_tensor("float32", t.shape);
  float* dst = reinterpret_cast<float*>(out.data.data());
  const float zp = float(q.zero_point), scale = float(q.scale);
  for (size_t i = 0; i < v.size(); ++i) dst[i] = (float(v[i]) - zp) * scale;
  return out;
}

const Tensor* find_tensor(const NamedTensors& ts, const std::string& name) {
  for (const auto& t : ts)
    if (t.first == name) return &t.second;
  return nullptr;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace ee
