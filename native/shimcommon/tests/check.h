// A few assertion macros for the shimcommon tests: no external framework.
// Each test binary prints "N passed, N failed" and exits non-zero on failure.
#pragma once

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "lmdrive_shim/util.h"

namespace check {

inline int& failures() {
  static int n = 0;
  return n;
}
inline int& passes() {
  static int n = 0;
  return n;
}

struct Case {
  const char* name;
  std::function<void()> fn;
};
inline std::vector<Case>& cases() {
  static std::vector<Case> v;
  return v;
}
struct Register {
  Register(const char* name, std::function<void()> fn) { cases().push_back({name, std::move(fn)}); }
};

inline int run_all(const char* suite) {
  for (auto& c : cases()) {
    int before = failures();
    try {
      c.fn();
    } catch (const std::exception& e) {
      std::printf("FAIL %s: unexpected exception: %s\n", c.name, e.what());
      ++failures();
    }
    if (failures() == before) {
      ++passes();
    } else {
      std::printf("     in case %s\n", c.name);
    }
  }
  std::printf("%s: %d passed, %d failed\n", suite, passes(), failures());
  return failures() == 0 ? 0 : 1;
}

}  // namespace check

#define TEST_CASE(name)                                              \
  static void name();                                                \
  static check::Register reg_##name(#name, name);                    \
  static void name()

#define CHECK(cond)                                                              \
  do {                                                                           \
    if (!(cond)) {                                                               \
      std::printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                \
      ++check::failures();                                                       \
    }                                                                            \
  } while (0)

#define CHECK_EQ(a, b)                                                                             \
  do {                                                                                             \
    auto va_ = (a);                                                                                \
    auto vb_ = (b);                                                                                \
    if (!(va_ == vb_)) {                                                                           \
      std::printf("FAIL %s:%d: %s == %s (%s vs %s)\n", __FILE__, __LINE__, #a, #b,                 \
                  check::show(va_).c_str(), check::show(vb_).c_str());                             \
      ++check::failures();                                                                         \
    }                                                                                              \
  } while (0)

// Expects expr to throw ShimError with the given code and a message holding `part`.
#define CHECK_THROWS(expr, code_, part)                                                            \
  do {                                                                                             \
    bool thrown_ = false;                                                                          \
    try {                                                                                          \
      (void)(expr);                                                                                \
    } catch (const lmdrive::shim::ShimError& e) {                                                  \
      thrown_ = true;                                                                              \
      if (e.code() != (code_) || std::string(e.what()).find(part) == std::string::npos) {          \
        std::printf("FAIL %s:%d: %s threw code %d \"%s\"\n", __FILE__, __LINE__, #expr, e.code(),  \
                    e.what());                                                                     \
        ++check::failures();                                                                       \
      }                                                                                            \
    }                                                                                              \
    if (!thrown_) {                                                                                \
      std::printf("FAIL %s:%d: %s did not throw\n", __FILE__, __LINE__, #expr);                    \
      ++check::failures();                                                                         \
    }                                                                                              \
  } while (0)

namespace check {
inline std::string show(const std::string& s) { return "\"" + s + "\""; }
inline std::string show(const char* s) { return s ? show(std::string(s)) : "NULL"; }
template <class T>
std::string show(const T& v) {
  if constexpr (std::is_arithmetic_v<T>) {
    return std::to_string(v);
  } else {
    return "<value>";
  }
}
}  // namespace check

#define TEST_MAIN(suite) \
  int main() { return check::run_all(suite); }
