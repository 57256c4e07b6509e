// A small strict JSON (RFC 8259) parser: engine configs, Hugging Face
// config files and safetensors headers. No extensions: no comments, no
// trailing commas, no NaN; duplicate object keys are rejected.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace lmdref {
namespace json {

enum class Type { Null, Bool, Number, String, Array, Object };

const char* type_name(Type t);

class ParseError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Value {
  Type type = Type::Null;
  bool boolean = false;
  double number = 0;                // numbers, as the nearest double
  std::string text;                 // strings; for numbers, the exact lexeme
  std::vector<Value> items;         // arrays
  std::vector<std::pair<std::string, Value>> members;  // objects, in document order

  bool is(Type t) const { return type == t; }
  // The member named key, or nullptr (objects only).
  const Value* find(const std::string& key) const;
  // True for numbers written without fraction or exponent.
  bool is_integer() const;
  // Exact integer conversion of the lexeme; false when not an integer or out of range.
  bool to_u64(uint64_t* out) const;
  bool to_i64(int64_t* out) const;
};

// Parses a complete document; throws ParseError with line and column.
Value parse(const char* data, size_t size);
Value parse(const std::string& text);

}  // namespace json
}  // namespace lmdref
