// A host tensor: numpy dtype name, shape, little-endian bytes; casts between dtypes the way
// numpy's astype does, and float16 <-> float32.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ee {

struct Tensor {
  std::string dtype;  // numpy name: float32, float16, float64, int8..int64, uint8..uint64, bool
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;

  size_t count() const;                  // product of the shape (1 for a scalar)
  std::vector<double> to_double() const;  // every element as float64 (what metrics.py compares)
  Tensor cast(const std::string& to) const;  // numpy astype: floats truncate toward zero to ints
};

// Per-tensor affine quantization (manifest `quantization`, LiteRT's per-tensor parameters).
struct Quantization {
  bool quantized = false;
  double scale = 0;
  int64_t zero_point = 0;
};

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;  // in manifest order

size_t dtype_size(const std::string& dtype);  // 0 for an unknown dtype
const Tensor* find_tensor(const NamedTensors& ts, const std::string& name);
Tensor make_tensor(const std::string& dtype, const std::vector<int64_t>& shape);
float half_to_float(uint16_t h);
uint16_t float_to_half(float f);
// real = scale * (q - zero_point), in float32 as numpy computes it (edgeexport's dequantize).
Tensor dequantize(const Tensor& t, const Quantization& q);
std::string shape_str(const std::vector<int64_t>& shape);  // "[1, 3, 64, 64]"

}  // namespace ee
