// Minimal test support: CHECK macros that count failures and a summary.
#pragma once

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace check {

inline int& failures() {
  static int n = 0;
  return n;
}

inline void fail(const char* file, int line, const std::string& what) {
  ++failures();
  std::fprintf(stderr, "%s:%d: FAILED %s\n", file, line, what.c_str());
}

inline std::string text(const std::string& s) { return "\"" + s + "\""; }
template <class T>
std::string text(const T& v) {
  return std::to_string(v);
}

inline int summary(const char* name) {
  if (failures()) {
    std::fprintf(stderr, "%s: %d check(s) failed\n", name, failures());
    return 1;
  }
  std::printf("%s: ok\n", name);
  return 0;
}

}  // namespace check

#define CHECK(cond)                                             \
  do {                                                          \
    if (!(cond)) check::fail(__FILE__, __LINE__, #cond);        \
  } while (0)

#define CHECK_EQ(a, b)                                                                   \
  do {                                                                                   \
    auto va_ = (a);                                                                      \
    auto vb_ = (b);                                                                      \
    if (!(va_ == vb_))                                                                   \
      check::fail(__FILE__, __LINE__,                                                    \
                  std::string(#a " == " #b " (") + check::text(va_) + " vs " +           \
                      check::text(vb_) + ")");                                           \
  } while (0)

// Substring check for error messages.
#define CHECK_HAS(text, part)                                                            \
  do {                                                                                   \
    std::string t_ = (text);                                                             \
    if (t_.find(part) == std::string::npos)                                              \
      check::fail(__FILE__, __LINE__, std::string("\"") + t_ + "\" lacks \"" + (part) + "\""); \
  } while (0)
