// The assertion macros of every native test (the kit's and the reference
// engine's): no external framework. A test file registers cases with
// TEST_CASE and ends with TEST_MAIN("suite"); the binary runs every case in
// file order, prints "suite: N passed, N failed" and exits non-zero on failure.
#pragma once

#include <cstdio>
#include <functional>
#include <string>
#include <type_traits>
#include <vector>

#include "lmdrive_boundary.hpp"

namespace check {

inline int& failures() {
  static int n = 0;
  return n;
}

// Records one failed check; the CHECK macros call it, and so may a test that
// computes its own condition.
inline void fail(const char* file, int line, const std::string& what) {
  std::printf("FAIL %s:%d: %s\n", file, line, what.c_str());
  ++failures();
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

// The command line, for tests that are given a path (TEST_MAIN stores it).
inline std::vector<std::string>& args() {
  static std::vector<std::string> v;
  return v;
}

inline int run_all(const char* suite, int argc, char** argv) {
  for (int i = 0; i < argc; ++i) args().push_back(argv[i]);
  int passed = 0;
  for (auto& c : cases()) {
    int before = failures();
    try {
      c.fn();
    } catch (const std::exception& e) {
      std::printf("FAIL %s: unexpected exception: %s\n", c.name, e.what());
      ++failures();
    }
    if (failures() == before) {
      ++passed;
    } else {
      std::printf("     in case %s\n", c.name);
    }
  }
  std::printf("%s: %d passed, %d failed\n", suite, passed, static_cast<int>(cases().size()) - passed);
  return failures() == 0 ? 0 : 1;
}

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

#define TEST_CASE(name)                           \
  static void name();                             \
  static check::Register reg_##name(#name, name); \
  static void name()

#define TEST_MAIN(suite) \
  int main(int argc, char** argv) { return check::run_all(suite, argc, argv); }

#define CHECK(cond)                                       \
  do {                                                    \
    if (!(cond)) check::fail(__FILE__, __LINE__, #cond);  \
  } while (0)

#define CHECK_EQ(a, b)                                                                             \
  do {                                                                                             \
    auto va_ = (a);                                                                                \
    auto vb_ = (b);                                                                                \
    if (!(va_ == vb_))                                                                             \
      check::fail(__FILE__, __LINE__,                                                              \
                  std::string(#a " == " #b " (") + check::show(va_) + " vs " + check::show(vb_) + ")"); \
  } while (0)

// Substring check for error messages.
#define CHECK_HAS(text, part)                                                                      \
  do {                                                                                             \
    std::string t_ = (text);                                                                       \
    if (t_.find(part) == std::string::npos)                                                        \
      check::fail(__FILE__, __LINE__, std::string("\"") + t_ + "\" lacks \"" + (part) + "\"");     \
  } while (0)

// Expects expr to throw lmdrive::AbiError with the given code and a message holding `part`.
#define CHECK_THROWS(expr, code_, part)                                                            \
  do {                                                                                             \
    bool thrown_ = false;                                                                          \
    try {                                                                                          \
      (void)(expr);                                                                                \
    } catch (const lmdrive::AbiError& e) {                                                         \
      thrown_ = true;                                                                              \
      if (e.code() != (code_) || std::string(e.what()).find(part) == std::string::npos)           \
        check::fail(__FILE__, __LINE__,                                                            \
                    std::string(#expr " threw code ") + std::to_string(e.code()) + " \"" + e.what() + "\""); \
    }                                                                                              \
    if (!thrown_) check::fail(__FILE__, __LINE__, #expr " did not throw");                         \
  } while (0)
