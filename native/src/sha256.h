// SHA-256 (FIPS 180-4) of a byte stream or a file, as lowercase hex: what manifest.json's
// `files` holds for every file of the bundle.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace ee {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t n);
  std::string hex();  // finishes the digest; the object is spent afterwards

 private:
  void block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t fill_ = 0;
  uint64_t bytes_ = 0;
};

// Throws std::runtime_error when the file cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace ee
