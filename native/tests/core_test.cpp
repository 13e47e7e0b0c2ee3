// Checks of the runner's core against known answers: SHA-256 test vectors (FIPS 180-4
// examples), JSON edge cases, statistics on hand-computed tensors, float16 conversion.
// Prints one line per failed check and exits 1 if any failed.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "json.h"
#include "sha256.h"
#include "stats.h"
#include "tensor.h"

using namespace ee;

static int failures = 0;
#define CHECK(cond)                                                   \
  do {                                                                \
    if (!(cond)) {                                                    \
      std::printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);     \
      ++failures;                                                     \
    }                                                                 \
  } while (0)

static std::string sha(const std::string& s) {
  Sha256 h;
  h.update(s.data(), s.size());
  return h.hex();
}

static Tensor f32(std::vector<int64_t> shape, std::vector<float> v) {
  Tensor t = make_tensor("float32", shape);
  std::memcpy(t.data.data(), v.data(), v.size() * 4);
  return t;
}

int main() {
  CHECK(sha("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  {
    Sha256 h;  // one million 'a', fed in uneven pieces
    std::string chunk(997, 'a');
    size_t left = 1000000;
    while (left > 0) {
      size_t n = left < chunk.size() ? left : chunk.size();
      h.update(chunk.data(), n);
      left -= n;
    }
    CHECK(h.hex() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  }

  Json j = Json::parse(R"({"a": [1, 2.5e1, -0.5, true, null], "s": "x\"\u00e9\ud83d\ude00", "o": {}})");
  CHECK(j.at("a").items().size() == 5);
  CHECK(j.at("a").items()[1].as_number() == 25.0);
  CHECK(j.at("a").items()[0].as_int() == 1);
  CHECK(j.at("s").as_string() == "x\"\xc3\xa9\xf0\x9f\x98\x80");
  CHECK(j.at("o").members().empty());
  CHECK(j.members()[0].first == "a" && j.members()[2].first == "o");  // file order kept
  for (const char* bad : {"{", "[1,]", "{\"a\" 1}", "\"\\ud800\"", "01x", "[1] 2", "\"a\nb\""}) {
    bool threw = false;
    try {
      Json::parse(bad);
    } catch (const JsonError&) {
      threw = true;
    }
    CHECK(threw);
  }
  CHECK(json_number(0.1) == "0.10000000000000001");
  CHECK(json_number(INFINITY) == "\"inf\"");
  CHECK(json_number(1.0) == "1.0" && json_number(-0.5) == "-0.5");

  // expected [[0, 1, 2, 3]], actual off by 0.5 at one place: hand-computed statistics
  ErrorStats s = error_stats(f32({1, 4}, {0, 1, 2, 3}), f32({1, 4}, {0, 1, 2.5f, 3}));
  CHECK(s.max_abs_err == 0.5);
  CHECK(std::fabs(s.max_rel_err - 0.5 / 3) < 1e-15);
  CHECK(std::fabs(s.cosine - 15.0 / std::sqrt(14.0 * 16.25)) < 1e-15);
  CHECK(std::fabs(s.sqnr_db - 10 * std::log10(14 / 0.25)) < 1e-12);
  CHECK(s.has_top1 && s.top1_agreement == 1.0);
  ErrorStats flip = error_stats(f32({2, 2}, {1, 0, 0, 1}), f32({2, 2}, {1, 0, 1, 0}));
  CHECK(flip.top1_agreement == 0.5);
  ErrorStats col = error_stats(f32({2, 1}, {2, 2}), f32({2, 1}, {2, 3}));
  CHECK(!col.has_top1 && col.max_rel_err == 0.5);  // constant expected: divided by max|e|
  ErrorStats zero = error_stats(f32({1, 2}, {0, 0}), f32({1, 2}, {0, 1}));
  CHECK(std::isinf(zero.max_rel_err) && zero.cosine == 0.0);
  ErrorStats m = merge({s, flip}, true);
  CHECK(m.top1_agreement == 0.75 && m.max_abs_err == 1.0);
  CHECK(merge({s, flip}, false).top1_agreement == 0.5);

  Tolerance tol;
  tol.name = "fp32";
  tol.has_max_rel = tol.has_min_cosine = true;
  tol.max_rel_err = 1e-4;
  tol.min_cosine = 0.99999;
  auto v = tol.violations(s);
  CHECK(v.size() == 2 && v[0] == "max_rel_err 0.167 > 0.0001" && v[1].rfind("cosine 0.", 0) == 0);

  CHECK(half_to_float(0x3C00) == 1.0f && half_to_float(0xC000) == -2.0f);
  CHECK(half_to_float(0x0001) == std::ldexp(1.0f, -24));
  CHECK(float_to_half(1.0f) == 0x3C00 && float_to_half(65504.0f) == 0x7BFF);
  CHECK(float_to_half(1.0f + std::ldexp(1.0f, -11)) == 0x3C00);  // tie rounds to even
  Tensor ids = make_tensor("int64", {2});
  int64_t raw[2] = {7, -3};
  std::memcpy(ids.data.data(), raw, 16);
  Tensor i32 = ids.cast("int32");
  CHECK(i32.to_double()[0] == 7 && i32.to_double()[1] == -3);
  CHECK(f32({1}, {-2.7f}).cast("int8").to_double()[0] == -2);  // truncates, as numpy

  // int8 codes -> real values: scale * (q - zero_point) in float32 (manifest `quantization`)
  Tensor codes = make_tensor("int8", {3});
  int8_t q[3] = {-128, -7, 127};
  std::memcpy(codes.data.data(), q, 3);
  Tensor real = dequantize(codes, {true, 0.5, -7});
  CHECK(real.dtype == "float32" && real.to_double() == std::vector<double>({-60.5, 0, 67}));

  if (failures == 0) std::printf("core: all checks passed\n");
  return failures == 0 ? 0 : 1;
}
