// state_dict_of and load_state_dict on a small module tree with parameters and buffers at several
// levels, registered in an order that tells PyTorch's order apart from LibTorch's.
#include "qimera/core/error.h"
#include "qimera/io/state_dict.h"
#include "support/test_support.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/nn.h>

namespace qimera::io {
namespace {
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// A parameter, a buffer, then another parameter: PyTorch lists both parameters first.
struct LeafImpl : torch::nn::Module {
  LeafImpl() {
    register_parameter("weight", torch::ones({2, 3}));
    register_buffer("stat", torch::zeros({2}));
    register_parameter("bias", torch::zeros({2}));
  }
};
TORCH_MODULE(Leaf);

struct BranchImpl : torch::nn::Module {
  BranchImpl() {
    register_module("leaf", Leaf());
    register_module("fc", torch::nn::Linear(torch::nn::LinearOptions(3, 2).bias(false)));
    register_parameter("gain", torch::ones({1}));
  }
};
TORCH_MODULE(Branch);

struct TreeImpl : torch::nn::Module {
  TreeImpl() {
    register_buffer("count", torch::zeros({}, torch::kLong));
    register_module("branch", Branch());
    register_module("bn", torch::nn::BatchNorm2d(2));
    register_parameter("scale", torch::ones({3}));  // registered after the children, listed before
  }
};
TORCH_MODULE(Tree);

std::vector<std::string> keys_of(const StateDict& state) {
  std::vector<std::string> keys;
  for (const auto& item : state) keys.push_back(item.first);
  return keys;
}

// Random values of the right shapes and dtypes, under the model's keys.
StateDict random_state(const torch::nn::Module& module) {
  StateDict state = state_dict_of(module);
  for (auto& [key, tensor] : state) {
    tensor = tensor.is_floating_point() ? at::randn_like(tensor) : at::full_like(tensor, 7);
  }
  return state;
}

std::string load_error(torch::nn::Module& module, const StateDict& state,
                       LoadOptions options = {}) {
  try {
    load_state_dict(module, state, options);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

TEST(StateDictOf, FollowsPyTorchsOrder) {
  Tree tree;
  EXPECT_THAT(keys_of(state_dict_of(*tree)),
              ElementsAre("scale", "count", "branch.gain", "branch.leaf.weight", "branch.leaf.bias",
                          "branch.leaf.stat", "branch.fc.weight", "bn.weight", "bn.bias",
                          "bn.running_mean", "bn.running_var", "bn.num_batches_tracked"));
}

TEST(StateDictOf, DetachesButSharesStorage) {
  Tree tree;
  const StateDict state = state_dict_of(*tree);
  EXPECT_FALSE(state[0].second.requires_grad());
  EXPECT_TRUE(tree->named_parameters()["scale"].requires_grad());
  EXPECT_EQ(state[0].second.data_ptr(), tree->named_parameters()["scale"].data_ptr());
}

TEST(LoadStateDict, RoundTripsEveryTensor) {
  Tree source;
  Tree target;
  const StateDict values = random_state(*source);
  const LoadReport report = load_state_dict(*target, values);
  EXPECT_THAT(report.missing, ::testing::IsEmpty());
  EXPECT_THAT(report.unexpected, ::testing::IsEmpty());
  EXPECT_EQ(report.loaded, keys_of(values));
  testing::expect_same_state(state_dict_of(*target), values);
  EXPECT_TRUE(target->named_parameters()["scale"].requires_grad());
}

TEST(LoadStateDict, StrictErrorListsEveryMissingAndUnexpectedKey) {
  Tree tree;
  StateDict state = random_state(*tree);
  state.erase(state.begin() + 7);  // bn.weight
  state.erase(state.begin() + 2);  // branch.gain
  state.emplace_back("extra.one", at::ones({1}));
  state.emplace_back("extra.two", at::ones({1}));
  const std::string message = load_error(*tree, state);
  EXPECT_THAT(message, AllOf(HasSubstr("2 missing keys: branch.gain, bn.weight"),
                             HasSubstr("2 unexpected keys: extra.one, extra.two")));
  EXPECT_TRUE(at::equal(tree->named_parameters()["scale"], at::ones({3})));  // nothing loaded
}

TEST(LoadStateDict, LongKeyListsAreShortened) {
  Tree tree;
  StateDict state = random_state(*tree);
  for (int i = 0; i < 25; ++i) state.emplace_back("junk" + std::to_string(i), at::ones({1}));
  const std::string message = load_error(*tree, state);
  EXPECT_THAT(message, AllOf(HasSubstr("25 unexpected keys: junk0, junk1"), HasSubstr("junk19"),
                             Not(HasSubstr("junk20")), HasSubstr("and 5 more")));
}

TEST(LoadStateDict, WrongShapeIsAlwaysAnError) {
  Tree tree;
  StateDict state = random_state(*tree);
  state[0].second = at::ones({4});     // scale is [3]
  state[6].second = at::ones({3, 2});  // branch.fc.weight is [2, 3]
  LoadOptions lenient;
  lenient.strict = false;
  const std::string message = load_error(*tree, state, lenient);
  EXPECT_THAT(
      message,
      AllOf(HasSubstr("scale: shape [4] in the state dict, [3] in the model"),
            HasSubstr("branch.fc.weight: shape [3, 2] in the state dict, [2, 3] in the model")));
  EXPECT_TRUE(at::equal(tree->named_buffers()["bn.running_var"], at::ones({2})));  // nothing loaded
}

TEST(LoadStateDict, DuplicateKeysAreAnError) {
  Tree tree;
  StateDict state = random_state(*tree);
  state.push_back(state[3]);
  EXPECT_THAT(load_error(*tree, state), HasSubstr("'branch.leaf.weight' twice"));
}

TEST(LoadStateDict, StripsTheDataParallelPrefix) {
  Tree tree;
  StateDict state = random_state(*tree);
  for (auto& item : state) item.first = "module." + item.first;
  const LoadReport report = load_state_dict(*tree, state);
  EXPECT_EQ(report.loaded.size(), state.size());
  EXPECT_TRUE(at::equal(tree->named_parameters()["scale"], state[0].second));

  LoadOptions keep;
  keep.strip_data_parallel_prefix = false;
  EXPECT_THAT(load_error(*tree, state, keep), HasSubstr("unexpected keys: module.scale"));
}

TEST(LoadStateDict, ConvertsDtypeAndKeepsTheModulesDevice) {
  Tree tree;
  StateDict state = random_state(*tree);
  for (auto& item : state) item.second = item.second.to(at::kDouble);
  load_state_dict(*tree, state);
  const at::Tensor scale = tree->named_parameters()["scale"];
  EXPECT_EQ(scale.scalar_type(), at::kFloat);
  EXPECT_TRUE(at::equal(scale, state[0].second.to(at::kFloat)));
  const at::Tensor count = tree->named_buffers()["count"];
  EXPECT_EQ(count.scalar_type(), at::kLong);
  EXPECT_EQ(count.item<int64_t>(), 7);
}

TEST(LoadStateDict, NonStrictReportsAndLoadsTheRest) {
  Tree tree;
  StateDict state = random_state(*tree);
  const at::Tensor scale = state[0].second;
  state.erase(state.begin() + 1);  // count
  state.emplace_back("surplus", at::ones({1}));
  LoadOptions lenient;
  lenient.strict = false;
  const LoadReport report = load_state_dict(*tree, state, lenient);
  EXPECT_THAT(report.missing, ElementsAre("count"));
  EXPECT_THAT(report.unexpected, ElementsAre("surplus"));
  EXPECT_EQ(report.loaded.size(), 11u);
  EXPECT_TRUE(at::equal(tree->named_parameters()["scale"], scale));
}

}  // namespace
}  // namespace qimera::io
