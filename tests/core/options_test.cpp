// Options described once: JSON, presets, command-line texts and resume comparisons from one list.
#include "qimera/core/error.h"
#include "qimera/core/options.h"
#include "support/test_support.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace qimera {
namespace {

using ::testing::HasSubstr;

enum class Color { Red, Blue };

struct Example {
  bool flag = false;
  int small = 3;
  int64_t count = 10;
  double rate = 0.5;
  std::string name = "a";
  std::vector<std::string> items;
  Color color = Color::Red;
  std::vector<int> codes;

  void describe(OptionVisitor& v) {
    v.option({"flag", "a switch"}, flag);
    v.option({"small", "an int"}, small);
    v.option({"count", "an int64", true}, count);
    v.option({"rate", "a real"}, rate);
    v.option({"name", "a string"}, name);
    v.option({"items", "a list"}, items);
    v.option({"color", "red or blue"},
             TextValue{[this] { return std::string(color == Color::Red ? "red" : "blue"); },
                       [this](const std::string& s) {
                         require(s == "red" || s == "blue", "--color {}: expected red or blue", s);
                         color = s == "red" ? Color::Red : Color::Blue;
                       }});
    v.option({"codes", "numbers as texts"},
             TextListValue{[this] {
                             std::vector<std::string> out;
                             for (int c : codes) out.push_back(std::to_string(c));
                             return out;
                           },
                           [this](const std::vector<std::string>& texts) {
                             codes.clear();
                             for (const auto& t : texts) codes.push_back(std::stoi(t));
                           }});
  }
};

using qimera::testing::error_of;

TEST(Options, FlagsAreNamesWithDashes) {
  EXPECT_EQ(flag_of("lr_q"), "--lr-q");
  EXPECT_EQ(flag_of("se_k"), "--se-k");
  EXPECT_EQ(flag_of("epochs"), "--epochs");
}

TEST(Options, JsonRoundTripsEveryType) {
  Example a;
  a.flag = true;
  a.small = -4;
  a.count = int64_t(1) << 40;
  a.rate = 1e-3;
  a.name = "zaq";
  a.items = {"x", "y"};
  a.color = Color::Blue;
  a.codes = {4, 8};
  const auto json = options_to_json(a);
  EXPECT_EQ(json.size(), 8u);
  EXPECT_EQ(json["color"], "blue");
  EXPECT_EQ(json["codes"], nlohmann::json({"4", "8"}));
  Example b;
  apply_json(b, json, "test");
  EXPECT_EQ(options_to_json(b), json);
  EXPECT_EQ(b.count, a.count);
  EXPECT_EQ(b.codes, a.codes);
}

TEST(Options, PatchesChangeOnlyWhatTheyName) {
  Example e;
  apply_json(e, {{"rate", 2}, {"name", "b"}}, "preset p");
  EXPECT_EQ(e.rate, 2.0);
  EXPECT_EQ(e.name, "b");
  EXPECT_EQ(e.count, 10);
}

TEST(Options, BadJsonIsAnErrorNamingWhereAndWhat) {
  Example e;
  EXPECT_THAT(error_of([&] { apply_json(e, {{"colour", "red"}}, "preset p"); }),
              HasSubstr("preset p: unknown option 'colour'"));
  EXPECT_THAT(error_of([&] { apply_json(e, {{"count", "ten"}}, "file.json"); }),
              HasSubstr("file.json: option 'count' must be an integer"));
  EXPECT_THAT(error_of([&] { apply_json(e, {{"small", int64_t(1) << 40}}, "f"); }), HasSubstr("out of range"));
  EXPECT_THAT(error_of([&] { apply_json(e, {{"color", "green"}}, "f"); }), HasSubstr("expected red or blue"));
  EXPECT_THAT(error_of([&] { apply_json(e, nlohmann::json::array(), "f"); }), HasSubstr("must be a JSON object"));
  // A deeply nested value is described, not dumped.
  nlohmann::json nested = nlohmann::json::array();
  nlohmann::json* innermost = &nested;
  for (int i = 0; i < 5000; ++i) {
    innermost->push_back(nlohmann::json::array());
    innermost = &innermost->back();
  }
  EXPECT_THAT(error_of([&] { apply_json(e, {{"count", nested}}, "f"); }), HasSubstr("an array of 1 items"));
}

TEST(Options, CommandLineTextsAreParsedStrictly) {
  Example e;
  set_from_text(describer(e), "count", {"42"});
  set_from_text(describer(e), "rate", {"1e-4"});
  set_from_text(describer(e), "flag", {"on"});
  set_from_text(describer(e), "items", {"a", "b", "c"});
  EXPECT_EQ(e.count, 42);
  EXPECT_EQ(e.rate, 1e-4);
  EXPECT_TRUE(e.flag);
  EXPECT_EQ(e.items.size(), 3u);
  EXPECT_THAT(error_of([&] { set_from_text(describer(e), "count", {"4x"}); }), HasSubstr("--count 4x: not an integer"));
  EXPECT_THAT(error_of([&] { set_from_text(describer(e), "rate", {"1e400"}); }), HasSubstr("--rate 1e400: out of range"));
  EXPECT_THAT(error_of([&] { set_from_text(describer(e), "rate", {"nan"}); }), HasSubstr("not a finite number"));
  EXPECT_THAT(error_of([&] { set_from_text(describer(e), "flag", {"maybe"}); }), HasSubstr("expected true or false"));
  EXPECT_THAT(error_of([&] { set_from_text(describer(e), "small", {"99999999999"}); }), HasSubstr("out of range"));
  EXPECT_THAT(error_of([&] { set_from_text(describer(e), "count", {"1", "2"}); }), HasSubstr("takes one value"));
}

TEST(Options, DifferencesSayWhichMayChangeOnResume) {
  Example saved, now;
  now.count = 20;  // resumable
  now.small = 5;   // not
  const auto d = diff_options(describer(now), options_to_json(saved), options_to_json(now));
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].name, "small");
  EXPECT_FALSE(d[0].resumable);
  EXPECT_EQ(d[1].name, "count");
  EXPECT_TRUE(d[1].resumable);
  EXPECT_THAT(describe_differences(d), HasSubstr("--small 3 (saved) vs 5 (now)"));
  // A saved option this description no longer has counts as a difference too.
  auto old = options_to_json(saved);
  old["retired"] = 1;
  EXPECT_EQ(diff_options(describer(saved), old, options_to_json(saved)).size(), 1u);
}

TEST(Options, ListingsCarryHelpAndKind) {
  Example e;
  const auto l = list_options(describer(e));
  ASSERT_EQ(l.size(), 8u);
  EXPECT_TRUE(l[0].is_bool);
  EXPECT_TRUE(l[5].is_list);
  EXPECT_TRUE(l[7].is_list);
  EXPECT_EQ(l[3].value, "0.5");
  EXPECT_EQ(l[2].help, "an int64");
}

}  // namespace
}  // namespace qimera
