// The strict JSON reader of every engine library: engine configs, Hugging
// Face config files, safetensors headers and TensorRT-LLM's engine
// config.json. RFC 8259 and nothing more: no comments, no trailing commas, no
// NaN, no leading zeros, no number outside the double range; a duplicate
// object key is an error; nesting is limited to 64 levels so that recursion
// cannot exhaust the stack. It parses into a small tree and writes nothing.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lmdrive::shim {

class Json {
public:
  enum class Kind { Null, Bool, Number, String, Array, Object };

  Json() = default;

  // Parses one complete document. Throws AbiError(LMD_ERR_INVALID)
  // "<what>: invalid JSON at line L column C: <why>"; `what` names the
  // document (a file path, "ref config").
  static Json parse(std::string_view text, const std::string& what);

  Kind kind() const { return kind_; }
  bool is_null() const { return kind_ == Kind::Null; }
  bool is_bool() const { return kind_ == Kind::Bool; }
  bool is_number() const { return kind_ == Kind::Number; }
  bool is_string() const { return kind_ == Kind::String; }
  bool is_array() const { return kind_ == Kind::Array; }
  bool is_object() const { return kind_ == Kind::Object; }

  bool as_bool() const { return b_; }
  // A number as the nearest double.
  double as_double() const { return num_; }
  // True for a number written without fraction or exponent ("2", not "2.0").
  bool is_integer() const;
  // Exact conversions of an integer's digits (beyond double precision too);
  // false when the value is not an integer or does not fit.
  bool to_i64(int64_t* out) const;
  bool to_u64(uint64_t* out) const;
  // A string's decoded text (a number's lexeme for numbers).
  const std::string& as_string() const { return str_; }
  const std::vector<Json>& items() const { return arr_; }
  // Object members in document order.
  const std::vector<std::pair<std::string, Json>>& members() const { return obj_; }

  // Object lookup; nullptr when absent or when this is not an object.
  const Json* find(const std::string& key) const;
  // Follows a path of object keys; nullptr when any step is missing.
  const Json* path(std::initializer_list<const char*> keys) const;

  static const char* kind_name(Kind k);

private:
  friend class JsonParser;
  Kind kind_ = Kind::Null;
  bool b_ = false;
  double num_ = 0;
  std::string str_;
  std::vector<Json> arr_;
  std::vector<std::pair<std::string, Json>> obj_;
};

}  // namespace lmdrive::shim
