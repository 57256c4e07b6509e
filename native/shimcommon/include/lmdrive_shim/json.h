// Minimal JSON reader used by the engine shims for their config strings and
// for TensorRT-LLM's engine config.json. It parses the full JSON grammar
// (RFC 8259) into a small tree; it does not write JSON.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace lmdrive::shim {

class Json {
public:
  enum class Kind { Null, Bool, Number, String, Array, Object };

  Json() = default;

  // Parses text; throws ShimError(LMD_ERR_INVALID) with the byte offset on
  // malformed input. `what` names the document in messages.
  static Json parse(const std::string& text, const std::string& what = "JSON");

  Kind kind() const { return kind_; }
  bool is_null() const { return kind_ == Kind::Null; }
  bool is_bool() const { return kind_ == Kind::Bool; }
  bool is_number() const { return kind_ == Kind::Number; }
  bool is_string() const { return kind_ == Kind::String; }
  bool is_array() const { return kind_ == Kind::Array; }
  bool is_object() const { return kind_ == Kind::Object; }

  bool as_bool() const { return b_; }
  double as_double() const { return num_; }
  // True when the number has no fraction and fits an int64.
  bool is_integer() const;
  int64_t as_int() const { return static_cast<int64_t>(num_); }
  const std::string& as_string() const { return str_; }
  const std::vector<Json>& items() const { return arr_; }
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
