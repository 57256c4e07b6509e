#include "check.h"
#include "lmdrive_shim/json.h"

using lmdrive::shim::Json;

TEST_CASE(parses_nested_documents) {
  Json j = Json::parse(R"({"a": [1, 2.5, -3e2, true, false, null], "b": {"c": "x\ny"}, "d": ""})");
  CHECK(j.is_object());
  const Json* a = j.find("a");
  CHECK(a && a->is_array());
  CHECK_EQ(a->items().size(), size_t(6));
  CHECK(a->items()[0].is_integer());
  CHECK_EQ(a->items()[0].as_int(), int64_t(1));
  CHECK(!a->items()[1].is_integer());
  CHECK_EQ(a->items()[1].as_double(), 2.5);
  CHECK_EQ(a->items()[2].as_double(), -300.0);
  CHECK(a->items()[3].as_bool());
  CHECK(a->items()[5].is_null());
  const Json* c = j.path({"b", "c"});
  CHECK(c && c->as_string() == "x\ny");
  CHECK(j.path({"b", "zz"}) == nullptr);
  CHECK_EQ(j.find("d")->as_string(), std::string());
}

TEST_CASE(decodes_unicode_escapes) {
  Json j = Json::parse(R"(["\u00e9", "\ud83d\ude00", "\u4e2d"])");
  CHECK_EQ(j.items()[0].as_string(), std::string("\xc3\xa9"));
  CHECK_EQ(j.items()[1].as_string(), std::string("\xf0\x9f\x98\x80"));
  CHECK_EQ(j.items()[2].as_string(), std::string("\xe4\xb8\xad"));
}

TEST_CASE(rejects_malformed_input) {
  CHECK_THROWS(Json::parse("["), LMD_ERR_INVALID, "unexpected end");
  CHECK_THROWS(Json::parse("{"), LMD_ERR_INVALID, "string key");
  CHECK_THROWS(Json::parse("{\"a\":1,}"), LMD_ERR_INVALID, "string key");
  CHECK_THROWS(Json::parse("[1 2]"), LMD_ERR_INVALID, "expected ','");
  CHECK_THROWS(Json::parse("01"), LMD_ERR_INVALID, "after the value");
  CHECK_THROWS(Json::parse("\"abc"), LMD_ERR_INVALID, "unterminated");
  CHECK_THROWS(Json::parse("{\"a\":1,\"a\":2}"), LMD_ERR_INVALID, "duplicate key");
  CHECK_THROWS(Json::parse("\"\\ud800\""), LMD_ERR_INVALID, "surrogate");
  CHECK_THROWS(Json::parse("tru"), LMD_ERR_INVALID, "unexpected character");
  CHECK_THROWS(Json::parse("1.", "cfg"), LMD_ERR_INVALID, "cfg: bad number");
}

TEST_CASE(limits_nesting_depth) {
  std::string deep(100, '[');
  deep += std::string(100, ']');
  CHECK_THROWS(Json::parse(deep), LMD_ERR_INVALID, "too deep");
}

TEST_MAIN("shimcommon json")
