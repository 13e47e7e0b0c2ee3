// A small JSON reader for manifest.json and model.io.json, and a writer for --json output.
// Objects keep their key order; numbers are doubles (integers up to 2^53 are exact).
#pragma once

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace ee {

class JsonError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Json {
 public:
  enum class Type { Null, Bool, Number, String, Array, Object };

  Json() = default;
  static Json parse(const std::string& text);  // throws JsonError with the byte offset

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::Null; }
  bool is_number() const { return type_ == Type::Number; }
  bool is_string() const { return type_ == Type::String; }
  bool is_array() const { return type_ == Type::Array; }
  bool is_object() const { return type_ == Type::Object; }

  bool as_bool() const;
  double as_number() const;
  long long as_int() const;  // a number with no fractional part
  const std::string& as_string() const;
  const std::vector<Json>& items() const;                           // array
  const std::vector<std::pair<std::string, Json>>& members() const;  // object, in file order

  bool has(const std::string& key) const { return find(key) != nullptr; }
  const Json* find(const std::string& key) const;  // nullptr when absent (or not an object)
  const Json& at(const std::string& key) const;    // throws JsonError naming the key

 private:
  friend class JsonParser;
  Type type_ = Type::Null;
  bool bool_ = false;
  double number_ = 0;
  std::string string_;
  std::vector<Json> items_;
  std::vector<std::pair<std::string, Json>> members_;
};

// Writing: a JSON string literal (quotes and escapes) and a number that reads back exactly;
// non-finite numbers become the strings "inf", "-inf", "nan" as metrics.ErrorStats.to_json does.
std::string json_quote(const std::string& s);
std::string json_number(double v);

}  // namespace ee
