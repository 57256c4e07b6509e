// The strict JSON parser: valid documents, exact integers, and rejections.
#include "check.h"
#include "json.h"

using namespace lmdref;

static bool rejects(const char* text) {
  try {
    json::parse(std::string(text));
  } catch (const json::ParseError&) {
    return true;
  }
  return false;
}

int main() {
  json::Value v = json::parse(std::string(
      R"( {"a": [1, -2.5e3, true, false, null], "s": "x\"\\\/\n\u00e9\ud83d\ude00", "o": {}} )"));
  CHECK(v.is(json::Type::Object));
  CHECK_EQ(v.members.size(), size_t(3));
  const json::Value* a = v.find("a");
  CHECK(a && a->items.size() == 5);
  CHECK(a->items[0].is_integer());
  CHECK(!a->items[1].is_integer());
  CHECK(a->items[1].number == -2500.0);
  CHECK(a->items[2].boolean && !a->items[3].boolean && a->items[4].is(json::Type::Null));
  CHECK(v.find("s")->text == "x\"\\/\n\xc3\xa9\xf0\x9f\x98\x80");
  CHECK(v.find("missing") == nullptr);

  // Integers beyond double precision stay exact.
  json::Value big = json::parse(std::string("18446744073709551615"));
  uint64_t u = 0;
  CHECK(big.to_u64(&u) && u == UINT64_MAX);
  CHECK(!json::parse(std::string("18446744073709551616")).to_u64(&u));
  int64_t i = 0;
  CHECK(json::parse(std::string("-9223372036854775808")).to_i64(&i) && i == INT64_MIN);
  CHECK(!json::parse(std::string("-1")).to_u64(&u));
  CHECK(!json::parse(std::string("1.0")).to_u64(&u));

  const char* bad[] = {"",          "{",           "[1,]",         "{\"a\":1,}",  "{'a':1}",
                       "01",        "1.",          ".5",           "1e",          "+1",
                       "NaN",       "Infinity",    "tru",          "\"\\x\"",     "\"a\nb\"",
                       "\"\\ud800\"", "{\"a\":1 \"b\":2}", "[1] 2", "{\"a\":1,\"a\":2}", "1e999",
                       "// c\n1",   "{\"a\" 1}",   "[1 2]",        "\"unterminated"};
  for (const char* b : bad)
    if (!rejects(b)) check::fail(__FILE__, __LINE__, std::string("accepted: ") + b);

  // Depth is bounded instead of overflowing the stack.
  CHECK(rejects(std::string(1000, '[').c_str()));

  try {
    json::parse(std::string("{\n  \"a\": x}"));
  } catch (const json::ParseError& e) {
    CHECK_HAS(e.what(), "line 2 column 8");
  }
  return check::summary("test_json");
}
