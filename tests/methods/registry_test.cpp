// The method registry: every method, option and preset is listed, described once and usable.
#include "qimera/core/error.h"
#include "qimera/methods/method.h"
#include "support/test_support.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <set>

namespace qimera::methods {
namespace {

using ::testing::HasSubstr;

Describe describe_of(Method& m) {
  return [&m](OptionVisitor& v) { m.describe(v); };
}

using qimera::testing::error_of;

TEST(Registry, ListsThePapersMethodsInTableOrder) {
  std::vector<std::string> names;
  for (const auto& m : all_methods()) names.push_back(m.name);
  EXPECT_EQ(names, (std::vector<std::string>{"ptq", "zeroq", "gdfq", "gdfq-mixup", "gdfq-cutmix", "zaq",
                                             "qimera", "qimera-zaq"}));
  EXPECT_THAT(error_of([] { find_method("autorecon"); }), HasSubstr("expected one of ptq, zeroq"));
}

TEST(Registry, EveryMethodsDefaultsAreValidAndOptionsUnique) {
  for (const auto& info : all_methods()) {
    SCOPED_TRACE(info.name);
    EXPECT_FALSE(info.description.empty());
    auto m = info.make();
    EXPECT_NO_THROW(m->validate());
    const auto names = option_names(describe_of(*m));
    EXPECT_EQ(std::set<std::string>(names.begin(), names.end()).size(), names.size());
    EXPECT_FALSE(names.empty());
  }
}

// "Described once": an option name means the same thing (the same help) in every method.
TEST(Registry, AnOptionHasOneDescriptionAcrossMethods) {
  std::map<std::string, std::string> help;
  for (const auto& info : all_methods()) {
    auto m = info.make();
    for (const auto& l : list_options(describe_of(*m))) {
      auto [it, added] = help.emplace(l.name, l.help);
      EXPECT_EQ(it->second, l.help) << l.name << " in " << info.name;
    }
  }
  EXPECT_GE(help.size(), 40u);
}

TEST(Registry, OptionsRoundTripThroughJsonForEveryMethod) {
  for (const auto& info : all_methods()) {
    for (const auto& preset : info.presets) {
      SCOPED_TRACE(info.name + " " + preset.name);
      auto a = configure_method(info, preset.name, {});
      const auto json = options_to_json(describe_of(*a));
      for (const auto& [key, value] : preset.options.items()) EXPECT_EQ(json.at(key), value) << key;
      auto b = info.make();
      apply_json(describe_of(*b), json, "round trip");
      EXPECT_EQ(options_to_json(describe_of(*b)), json);
    }
  }
}

TEST(Registry, PresetsOfThePapersSettings) {
  auto q = configure_method(find_method("qimera"), "reference-cifar100-4w4a", {});
  const auto o = options_to_json(describe_of(*q));
  EXPECT_EQ(o["se_k"], 10);
  EXPECT_EQ(o["embedding_init"], "extracted");
  EXPECT_EQ(o["observer"], "reference-ema");
  EXPECT_EQ(o["batch_size"], 200);
  EXPECT_EQ(o["wbits"], 4);
  EXPECT_EQ(o["dm"], false);
  auto g = configure_method(find_method("gdfq"), "reference-imagenet-resnet50-4w4a", {});
  const auto go = options_to_json(describe_of(*g));
  EXPECT_EQ(go["batch_size"], 16);
  EXPECT_EQ(go["lr_q"], 1e-6);
  EXPECT_EQ(go["warmup_epochs"], 50);
  EXPECT_EQ(go["generator"], "gdfq");
  auto z = configure_method(find_method("zaq"), "", {});
  const auto zo = options_to_json(describe_of(*z));
  EXPECT_EQ(zo["epochs"], 300);
  EXPECT_EQ(zo["iterations"], 60);
  EXPECT_EQ(zo["batch_size"], 256);
  EXPECT_EQ(zo["lr_q"], 0.1);
  EXPECT_EQ(zo["nesterov"], false);
  EXPECT_EQ(zo["zaq_q_steps"], 5);
  auto c = configure_method(find_method("gdfq-cutmix"), "reference-imagenet-resnet18-4w4a", {});
  EXPECT_EQ(options_to_json(describe_of(*c))["mix_prob"], 1.0);
  auto c10 = configure_method(find_method("gdfq-cutmix"), "reference-cifar10-4w4a", {});
  EXPECT_EQ(options_to_json(describe_of(*c10))["mix_prob"], 0.5);
  EXPECT_THAT(error_of([] { configure_method(find_method("qimera"), "reference-cifar11-4w4a", {}); }),
              HasSubstr("its presets: fmnist-short, fmnist-short-3bit, reference-cifar10-4w4a"));
}

TEST(Registry, TheShortPresetIsTheSameScheduleForEveryDataFreeMethod) {
  for (const auto* name : {"gdfq", "gdfq-mixup", "gdfq-cutmix", "qimera", "zaq", "qimera-zaq"}) {
    auto m = configure_method(find_method(name), "fmnist-short", {});
    const auto o = options_to_json(describe_of(*m));
    EXPECT_EQ(o["epochs"], 8) << name;
    EXPECT_EQ(o["iterations"], 150) << name;
    EXPECT_EQ(o["batch_size"], 64) << name;
    EXPECT_EQ(o["lr_q"], 1e-3) << name;
  }
}

// The 3-bit preset is the short schedule plus the flags the 3w3a sweeps measured best; a method's
// own additions (Qimera's K, p, EEI) are those of the short preset, and a flag still wins.
TEST(Registry, TheThreeBitPresetIsTheShortScheduleWithMseRangesAndTheClippedSte) {
  for (const auto* name : {"gdfq", "gdfq-mixup", "gdfq-cutmix", "qimera"}) {
    auto m = configure_method(find_method(name), "fmnist-short-3bit", {});
    auto shortm = configure_method(find_method(name), "fmnist-short", {});
    auto o = options_to_json(describe_of(*m));
    auto s = options_to_json(describe_of(*shortm));
    EXPECT_EQ(o["wbits"], 3) << name;
    EXPECT_EQ(o["abits"], 3) << name;
    EXPECT_EQ(o["lr_q"], 1e-4) << name;
    EXPECT_EQ(o["observer"], "mse") << name;
    EXPECT_EQ(o["ste"], "clipped") << name;
    EXPECT_EQ(s["observer"], "percentile") << name;
    EXPECT_EQ(s["ste"], "unclipped") << name;
    for (const auto* key : {"wbits", "abits", "lr_q", "observer", "ste"}) s.erase(key), o.erase(key);
    EXPECT_EQ(o, s) << name;
  }
  auto q = configure_method(find_method("qimera"), "fmnist-short-3bit", {{"abits", {"4"}}});
  const auto qo = options_to_json(describe_of(*q));
  EXPECT_EQ(qo["abits"], 4);
  EXPECT_EQ(qo["observer"], "mse");
  EXPECT_THAT(error_of([] { configure_method(find_method("zaq"), "fmnist-short-3bit", {}); }),
              HasSubstr("method 'zaq' has no preset 'fmnist-short-3bit'"));
}

TEST(Registry, AGivenOptionMustApplyToTheMethod) {
  EXPECT_THAT(error_of([] { configure_method(find_method("gdfq"), "", {{"se_k", {"3"}}}); }),
              HasSubstr("--se-k does not apply to --method gdfq (it applies to: qimera, qimera-zaq)"));
  EXPECT_THAT(error_of([] { configure_method(find_method("qimera"), "", {{"warmup_epochs", {"500"}}}); }),
              HasSubstr("--warmup-epochs 500 must be in [0, --epochs = 400]"));
  auto m = configure_method(find_method("qimera"), "fmnist-short", {{"se_k", {"5"}}, {"dm", {"true"}}});
  const auto o = options_to_json(describe_of(*m));
  EXPECT_EQ(o["se_k"], 5);
  EXPECT_EQ(o["dm"], true);
  EXPECT_EQ(o["epochs"], 8);  // the preset's, not overridden
}

TEST(Registry, ResumeKeepsTheSavedOptionsAndRefusesChangedOnes) {
  auto first = configure_method(find_method("qimera"), "fmnist-short", {{"se_k", {"3"}}});
  const auto saved = options_to_json(describe_of(*first));
  // Nothing given: the saved options, not the defaults.
  auto same = configure_method(find_method("qimera"), "", {}, &saved);
  EXPECT_EQ(options_to_json(describe_of(*same)), saved);
  // Epochs and logging may change.
  auto longer = configure_method(find_method("qimera"), "", {{"epochs", {"12"}}, {"log_every", {"5"}}}, &saved);
  EXPECT_EQ(options_to_json(describe_of(*longer))["epochs"], 12);
  // Anything else is refused, every difference named.
  const auto message = error_of(
      [&] { configure_method(find_method("qimera"), "", {{"wbits", {"2"}}, {"abits", {"8"}}}, &saved); });
  EXPECT_THAT(message, HasSubstr("--wbits 4 (saved) vs 2 (now)"));
  EXPECT_THAT(message, HasSubstr("--abits 4 (saved) vs 8 (now)"));
  // A different preset is a change too.
  EXPECT_THAT(error_of([&] { configure_method(find_method("qimera"), "reference-cifar10-4w4a", {}, &saved); }),
              HasSubstr("--resume"));
}

}  // namespace
}  // namespace qimera::methods
