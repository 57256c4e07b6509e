// The kit's strict JSON parser: valid documents, exact integers, and
// rejections with the line and column of the fault.
#include <cstdint>

#include "check.h"
#include "lmdrive_shim/json.h"

using lmdrive::shim::Json;

namespace {

Json parse(const std::string& text) { return Json::parse(text, "test"); }

bool rejects(const std::string& text) {
  try {
    parse(text);
  } catch (const lmdrive::AbiError& e) {
    return e.code() == LMD_ERR_INVALID;
  }
  return false;
}

}  // namespace

TEST_CASE(parses_nested_documents) {
  Json j = parse(R"({"a": [1, 2.5, -3e2, true, false, null], "b": {"c": "x\ny"}, "d": ""})");
  CHECK(j.is_object());
  const Json* a = j.find("a");
  CHECK(a && a->is_array());
  CHECK_EQ(a->items().size(), size_t(6));
  CHECK(a->items()[0].is_integer());
  int64_t one = 0;
  CHECK(a->items()[0].to_i64(&one) && one == 1);
  CHECK(!a->items()[1].is_integer());
  CHECK_EQ(a->items()[1].as_double(), 2.5);
  CHECK_EQ(a->items()[2].as_double(), -300.0);
  CHECK(!a->items()[2].is_integer());  // an exponent makes it a non-integer, whatever its value
  CHECK(a->items()[3].as_bool() && !a->items()[4].as_bool());
  CHECK(a->items()[5].is_null());
  const Json* c = j.path({"b", "c"});
  CHECK(c && c->as_string() == "x\ny");
  CHECK(j.path({"b", "zz"}) == nullptr);
  CHECK(j.find("missing") == nullptr);
  CHECK_EQ(j.find("d")->as_string(), std::string());
  CHECK_EQ(j.members().front().first, std::string("a"));  // document order
}

TEST_CASE(decodes_escapes) {
  Json j = parse(R"(["\u00e9", "\ud83d\ude00", "\u4e2d", "x\"\\\/\n"])");
  CHECK_EQ(j.items()[0].as_string(), std::string("\xc3\xa9"));
  CHECK_EQ(j.items()[1].as_string(), std::string("\xf0\x9f\x98\x80"));
  CHECK_EQ(j.items()[2].as_string(), std::string("\xe4\xb8\xad"));
  CHECK_EQ(j.items()[3].as_string(), std::string("x\"\\/\n"));
}

TEST_CASE(integers_beyond_double_precision_stay_exact) {
  uint64_t u = 0;
  CHECK(parse("18446744073709551615").to_u64(&u) && u == UINT64_MAX);
  CHECK(!parse("18446744073709551616").to_u64(&u));
  int64_t i = 0;
  CHECK(parse("-9223372036854775808").to_i64(&i) && i == INT64_MIN);
  CHECK(!parse("-1").to_u64(&u));
  CHECK(!parse("1.0").to_u64(&u));
  CHECK(!parse("1e2").to_i64(&i));
}

TEST_CASE(rejects_malformed_input) {
  CHECK_THROWS(parse("["), LMD_ERR_INVALID, "unexpected end");
  CHECK_THROWS(parse("{"), LMD_ERR_INVALID, "string key");
  CHECK_THROWS(parse("{\"a\":1,}"), LMD_ERR_INVALID, "string key");
  CHECK_THROWS(parse("[1 2]"), LMD_ERR_INVALID, "expected ','");
  CHECK_THROWS(parse("01"), LMD_ERR_INVALID, "leading zero");
  CHECK_THROWS(parse("[1] 2"), LMD_ERR_INVALID, "after the value");
  CHECK_THROWS(parse("\"abc"), LMD_ERR_INVALID, "unterminated");
  CHECK_THROWS(parse("{\"a\":1,\"a\":2}"), LMD_ERR_INVALID, "duplicate key \"a\"");
  CHECK_THROWS(parse("\"\\ud800\""), LMD_ERR_INVALID, "surrogate");
  CHECK_THROWS(parse("tru"), LMD_ERR_INVALID, "unexpected character");
  CHECK_THROWS(parse("1e999"), LMD_ERR_INVALID, "out of range");
  CHECK_THROWS(Json::parse("1.", "cfg"), LMD_ERR_INVALID, "cfg: invalid JSON at line 1 column 3");

  const char* bad[] = {"",           "{",         "[1,]",          "{\"a\":1,}", "{'a':1}",
                       "01",         "1.",        ".5",            "1e",         "+1",
                       "NaN",        "Infinity",  "tru",           "\"\\x\"",    "\"a\nb\"",
                       "\"\\ud800\"", "{\"a\":1 \"b\":2}", "[1] 2", "{\"a\":1,\"a\":2}", "1e999",
                       "// c\n1",    "{\"a\" 1}", "[1 2]",         "\"unterminated"};
  for (const char* b : bad) {
    if (!rejects(b)) check::fail(__FILE__, __LINE__, std::string("accepted: ") + b);
  }
}

TEST_CASE(reports_line_and_column) {
  CHECK_THROWS(Json::parse("{\n  \"a\": x}", "config.json"), LMD_ERR_INVALID,
               "config.json: invalid JSON at line 2 column 8");
}

TEST_CASE(limits_nesting_depth) {
  std::string ok(64, '[');
  ok += std::string(64, ']');
  CHECK(!rejects(ok));
  std::string deep(100, '[');
  deep += std::string(100, ']');
  CHECK_THROWS(parse(deep), LMD_ERR_INVALID, "too deep");
  CHECK(rejects(std::string(100000, '[')));  // bounded instead of overflowing the stack
}

TEST_MAIN("shimcommon json")
