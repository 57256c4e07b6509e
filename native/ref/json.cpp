#include "json.h"

#include <charconv>
#include <cstring>

namespace lmdref {
namespace json {

const char* type_name(Type t) {
  switch (t) {
    case Type::Null: return "null";
    case Type::Bool: return "boolean";
    case Type::Number: return "number";
    case Type::String: return "string";
    case Type::Array: return "array";
    case Type::Object: return "object";
  }
  return "?";
}

const Value* Value::find(const std::string& key) const {
  for (const auto& m : members)
    if (m.first == key) return &m.second;
  return nullptr;
}

bool Value::is_integer() const {
  return type == Type::Number && text.find_first_of(".eE") == std::string::npos;
}

bool Value::to_u64(uint64_t* out) const {
  if (!is_integer() || text[0] == '-') return false;
  auto r = std::from_chars(text.data(), text.data() + text.size(), *out);
  return r.ec == std::errc() && r.ptr == text.data() + text.size();
}

bool Value::to_i64(int64_t* out) const {
  if (!is_integer()) return false;
  auto r = std::from_chars(text.data(), text.data() + text.size(), *out);
  return r.ec == std::errc() && r.ptr == text.data() + text.size();
}

namespace {

// Deep enough for any config; shallow enough that recursion cannot overflow the stack.
constexpr int kMaxDepth = 200;

class Parser {
 public:
  Parser(const char* p, size_t n) : begin_(p), p_(p), end_(p + n) {}

  Value document() {
    Value v = value(0);
    skip_ws();
    if (p_ != end_) error("unexpected content after the JSON value");
    return v;
  }

 private:
  const char* begin_;
  const char* p_;
  const char* end_;

  [[noreturn]] void error(const std::string& what) const {
    size_t line = 1, col = 1;
    for (const char* q = begin_; q < p_; ++q) {
      if (*q == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    throw ParseError("invalid JSON at line " + std::to_string(line) + " column " +
                     std::to_string(col) + ": " + what);
  }

  void skip_ws() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }

  void expect_word(const char* word) {
    size_t n = std::strlen(word);
    if (static_cast<size_t>(end_ - p_) < n || std::memcmp(p_, word, n) != 0)
      error(std::string("expected '") + word + "'");
    p_ += n;
  }

  Value value(int depth) {
    if (depth > kMaxDepth) error("nesting deeper than 200 levels");
    skip_ws();
    if (p_ == end_) error("unexpected end of input");
    Value v;
    switch (*p_) {
      case '{': object(v, depth); break;
      case '[': array(v, depth); break;
      case '"':
        v.type = Type::String;
        v.text = string();
        break;
      case 't':
        expect_word("true");
        v.type = Type::Bool;
        v.boolean = true;
        break;
      case 'f':
        expect_word("false");
        v.type = Type::Bool;
        break;
      case 'n':
        expect_word("null");
        break;
      default:
        if (*p_ == '-' || (*p_ >= '0' && *p_ <= '9')) {
          number(v);
        } else {
          error(std::string("unexpected character '") + *p_ + "'");
        }
    }
    return v;
  }

  void object(Value& v, int depth) {
    v.type = Type::Object;
    ++p_;
    skip_ws();
    if (p_ < end_ && *p_ == '}') {
      ++p_;
      return;
    }
    for (;;) {
      skip_ws();
      if (p_ == end_ || *p_ != '"') error("expected a string key");
      std::string key = string();
      if (v.find(key)) error("duplicate key \"" + key + "\"");
      skip_ws();
      if (p_ == end_ || *p_ != ':') error("expected ':'");
      ++p_;
      Value member = value(depth + 1);
      v.members.emplace_back(std::move(key), std::move(member));
      skip_ws();
      if (p_ == end_) error("unexpected end of input in object");
      if (*p_ == ',') {
        ++p_;
        continue;
      }
      if (*p_ == '}') {
        ++p_;
        return;
      }
      error("expected ',' or '}'");
    }
  }

  void array(Value& v, int depth) {
    v.type = Type::Array;
    ++p_;
    skip_ws();
    if (p_ < end_ && *p_ == ']') {
      ++p_;
      return;
    }
    for (;;) {
      v.items.push_back(value(depth + 1));
      skip_ws();
      if (p_ == end_) error("unexpected end of input in array");
      if (*p_ == ',') {
        ++p_;
        continue;
      }
      if (*p_ == ']') {
        ++p_;
        return;
      }
      error("expected ',' or ']'");
    }
  }

  unsigned hex4() {
    if (end_ - p_ < 4) error("truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = *p_++;
      v <<= 4;
      if (c >= '0' && c <= '9') v |= c - '0';
      else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
      else error("bad hex digit in \\u escape");
    }
    return v;
  }

  static void put_utf8(std::string& s, unsigned cp) {
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else if (cp < 0x800) {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      s += static_cast<char>(0xE0 | (cp >> 12));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      s += static_cast<char>(0xF0 | (cp >> 18));
      s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  std::string string() {
    ++p_;  // opening quote
    std::string s;
    for (;;) {
      if (p_ == end_) error("unterminated string");
      unsigned char c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        ++p_;
        return s;
      }
      if (c < 0x20) error("control character inside a string");
      if (c != '\\') {
        s += static_cast<char>(c);
        ++p_;
        continue;
      }
      ++p_;
      if (p_ == end_) error("unterminated escape");
      char e = *p_++;
      switch (e) {
        case '"': s += '"'; break;
        case '\\': s += '\\'; break;
        case '/': s += '/'; break;
        case 'b': s += '\b'; break;
        case 'f': s += '\f'; break;
        case 'n': s += '\n'; break;
        case 'r': s += '\r'; break;
        case 't': s += '\t'; break;
        case 'u': {
          unsigned cp = hex4();
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') error("unpaired surrogate");
            p_ += 2;
            unsigned lo = hex4();
            if (lo < 0xDC00 || lo > 0xDFFF) error("unpaired surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            error("unpaired surrogate");
          }
          put_utf8(s, cp);
          break;
        }
        default:
          error(std::string("unknown escape '\\") + e + "'");
      }
    }
  }

  void number(Value& v) {
    const char* start = p_;
    if (*p_ == '-') ++p_;
    if (p_ == end_ || !(*p_ >= '0' && *p_ <= '9')) error("expected a digit");
    if (*p_ == '0') {
      ++p_;
      if (p_ < end_ && *p_ >= '0' && *p_ <= '9') error("leading zero in a number");
    } else {
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    }
    if (p_ < end_ && *p_ == '.') {
      ++p_;
      if (p_ == end_ || !(*p_ >= '0' && *p_ <= '9')) error("expected a digit after '.'");
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (p_ == end_ || !(*p_ >= '0' && *p_ <= '9')) error("expected a digit in the exponent");
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    }
    v.type = Type::Number;
    v.text.assign(start, p_);
    // from_chars is locale-independent, unlike strtod.
    auto r = std::from_chars(start, p_, v.number);
    if (r.ec == std::errc::result_out_of_range) error("number out of range");
    if (r.ec != std::errc()) error("bad number");
  }
};

}  // namespace

Value parse(const char* data, size_t size) { return Parser(data, size).document(); }

Value parse(const std::string& text) { return parse(text.data(), text.size()); }

}  // namespace json
}  // namespace lmdref
