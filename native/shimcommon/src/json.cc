#include "lmdrive_shim/json.h"

#include <charconv>
#include <cstring>

#include "lmdrive_shim/util.h"

namespace lmdrive::shim {

class JsonParser {
public:
  JsonParser(std::string_view text, const std::string& what)
      : begin_(text.data()), p_(text.data()), end_(text.data() + text.size()), what_(what) {}

  Json document() {
    Json v = value(0);
    skip_ws();
    if (p_ != end_) error("unexpected text after the value");
    return v;
  }

private:
  static constexpr int kMaxDepth = 64;

  const char* begin_;
  const char* p_;
  const char* end_;
  const std::string& what_;

  [[noreturn]] void error(const std::string& why) const {
    size_t line = 1, col = 1;
    for (const char* q = begin_; q < p_; ++q) {
      if (*q == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    fail(LMD_ERR_INVALID, strf("%s: invalid JSON at line %zu column %zu: %s", what_.c_str(), line, col, why.c_str()));
  }

  void skip_ws() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }

  void expect_word(const char* word) {
    size_t n = std::strlen(word);
    if (static_cast<size_t>(end_ - p_) < n || std::memcmp(p_, word, n) != 0) {
      error(std::string("unexpected character '") + *p_ + "'");
    }
    p_ += n;
  }

  static bool digit(char c) { return c >= '0' && c <= '9'; }

  Json value(int depth) {
    if (depth > kMaxDepth) error("nesting deeper than 64 levels (too deep)");
    skip_ws();
    if (p_ == end_) error("unexpected end of input");
    Json v;
    switch (*p_) {
      case '{': object(v, depth); break;
      case '[': array(v, depth); break;
      case '"':
        v.kind_ = Json::Kind::String;
        v.str_ = string();
        break;
      case 't':
        expect_word("true");
        v.kind_ = Json::Kind::Bool;
        v.b_ = true;
        break;
      case 'f':
        expect_word("false");
        v.kind_ = Json::Kind::Bool;
        break;
      case 'n': expect_word("null"); break;
      default:
        if (*p_ == '-' || digit(*p_)) {
          number(v);
        } else {
          error(std::string("unexpected character '") + *p_ + "'");
        }
    }
    return v;
  }

  void object(Json& v, int depth) {
    v.kind_ = Json::Kind::Object;
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
      Json member = value(depth + 1);
      v.obj_.emplace_back(std::move(key), std::move(member));
      skip_ws();
      if (p_ == end_) error("unexpected end of input in an object");
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

  void array(Json& v, int depth) {
    v.kind_ = Json::Kind::Array;
    ++p_;
    skip_ws();
    if (p_ < end_ && *p_ == ']') {
      ++p_;
      return;
    }
    for (;;) {
      v.arr_.push_back(value(depth + 1));
      skip_ws();
      if (p_ == end_) error("unexpected end of input in an array");
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
      else error("bad hex digit in a \\u escape");
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

  // Reads a string starting at its opening quote; returns the decoded text.
  std::string string() {
    ++p_;
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
        default: error(std::string("unknown escape '\\") + e + "'");
      }
    }
  }

  void number(Json& v) {
    const char* start = p_;
    if (*p_ == '-') ++p_;
    if (p_ == end_ || !digit(*p_)) error("expected a digit");
    if (*p_ == '0') {
      ++p_;
      if (p_ < end_ && digit(*p_)) error("leading zero in a number");
    } else {
      while (p_ < end_ && digit(*p_)) ++p_;
    }
    if (p_ < end_ && *p_ == '.') {
      ++p_;
      if (p_ == end_ || !digit(*p_)) error("expected a digit after '.'");
      while (p_ < end_ && digit(*p_)) ++p_;
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (p_ == end_ || !digit(*p_)) error("expected a digit in the exponent");
      while (p_ < end_ && digit(*p_)) ++p_;
    }
    v.kind_ = Json::Kind::Number;
    v.str_.assign(start, p_);
    // from_chars is locale-independent, unlike strtod.
    auto r = std::from_chars(start, p_, v.num_);
    if (r.ec == std::errc::result_out_of_range) error("number out of range");
    if (r.ec != std::errc()) error("bad number");
  }
};

Json Json::parse(std::string_view text, const std::string& what) { return JsonParser(text, what).document(); }

bool Json::is_integer() const {
  return kind_ == Kind::Number && str_.find_first_of(".eE") == std::string::npos;
}

bool Json::to_i64(int64_t* out) const {
  if (!is_integer()) return false;
  auto r = std::from_chars(str_.data(), str_.data() + str_.size(), *out);
  return r.ec == std::errc() && r.ptr == str_.data() + str_.size();
}

bool Json::to_u64(uint64_t* out) const {
  if (!is_integer() || str_[0] == '-') return false;
  auto r = std::from_chars(str_.data(), str_.data() + str_.size(), *out);
  return r.ec == std::errc() && r.ptr == str_.data() + str_.size();
}

const Json* Json::find(const std::string& key) const {
  if (kind_ != Kind::Object) return nullptr;
  for (const auto& kv : obj_) {
    if (kv.first == key) return &kv.second;
  }
  return nullptr;
}

const Json* Json::path(std::initializer_list<const char*> keys) const {
  const Json* cur = this;
  for (const char* k : keys) {
    cur = cur->find(k);
    if (!cur) return nullptr;
  }
  return cur;
}

const char* Json::kind_name(Kind k) {
  switch (k) {
    case Kind::Null: return "null";
    case Kind::Bool: return "boolean";
    case Kind::Number: return "number";
    case Kind::String: return "string";
    case Kind::Array: return "array";
    case Kind::Object: return "object";
  }
  return "?";
}

}  // namespace lmdrive::shim
