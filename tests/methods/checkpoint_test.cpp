// Checkpoints in the project's own format: exact round trips of modules, SGD and Adam state, named
// tensors and random generators; integrity checks that catch an edited tensor or metadata; failed
// writes (a full disk) that keep the last good checkpoint; and old LibTorch archives, whose reader
// runs code found in the file, refused unread.
#include "qimera/core/atomic_file.h"
#include "qimera/core/error.h"
#include "qimera/io/safetensors.h"
#include "qimera/methods/checkpoint.h"
#include "support/test_support.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/optim/adam.h>
#include <torch/optim/sgd.h>
#include <torch/serialize/output-archive.h>

#include <sys/resource.h>
#include <unistd.h>

#include <csignal>

namespace qimera::methods {
namespace {
namespace fs = std::filesystem;
using qimera::testing::TempDir;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

torch::nn::Sequential small_net() {
  return torch::nn::Sequential(torch::nn::Conv2d(torch::nn::Conv2dOptions(2, 3, 3).padding(1)),
                               torch::nn::BatchNorm2d(3), torch::nn::Flatten(),
                               torch::nn::Linear(3 * 4 * 4, 5));
}

void train_step(torch::nn::Sequential& net, torch::optim::Optimizer& optimizer) {
  const auto loss = net->forward(at::randn({4, 2, 4, 4})).square().mean();
  optimizer.zero_grad();
  loss.backward();
  optimizer.step();
}

std::vector<at::Tensor> snapshot(torch::nn::Module& module) {
  std::vector<at::Tensor> out;
  for (const auto& p : module.parameters()) out.push_back(p.detach().clone());
  for (const auto& b : module.buffers()) out.push_back(b.detach().clone());
  return out;
}

void expect_equal(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(at::equal(a[i], b[i])) << "tensor " << i;
}

using qimera::testing::error_of;

// Trains, checkpoints, trains on (the reference); then a fresh process-like start from other
// weights loads the checkpoint and must train on to exactly the same bits.
template <typename MakeOptimizer>
void expect_exact_resume(const MakeOptimizer& make_optimizer) {
  TempDir dir;
  at::manual_seed(1);
  auto net = small_net();
  auto optimizer = make_optimizer(*net);
  for (int i = 0; i < 3; ++i) train_step(net, *optimizer);
  at::Tensor bank = at::randn({2, 3});
  TrainingState state{{{"net", net.get()}}, {{"opt", optimizer.get()}}, c10::kCPU, {{"bank", &bank}}};
  save_checkpoint(dir / "c.ckpt", state, 4, {{"history", {1, 2, 3}}});
  for (int i = 0; i < 2; ++i) train_step(net, *optimizer);
  const auto expected = snapshot(*net);
  const auto expected_noise = at::randn({3});

  at::manual_seed(99);
  auto other = small_net();
  auto other_optimizer = make_optimizer(*other);
  train_step(other, *other_optimizer);  // state the checkpoint must replace, not merge with
  at::Tensor other_bank = at::zeros({2, 3});
  TrainingState other_state{{{"net", other.get()}}, {{"opt", other_optimizer.get()}}, c10::kCPU,
                            {{"bank", &other_bank}}};
  const auto info = load_checkpoint(dir / "c.ckpt", other_state);
  EXPECT_EQ(info.next_epoch, 4);
  EXPECT_EQ(info.extra["history"], nlohmann::json({1, 2, 3}));
  EXPECT_TRUE(at::equal(other_bank, bank));
  for (int i = 0; i < 2; ++i) train_step(other, *other_optimizer);
  expect_equal(snapshot(*other), expected);
  EXPECT_TRUE(at::equal(at::randn({3}), expected_noise));  // the generator's state came back
}

TEST(CheckpointFormat, SgdWithNesterovMomentumResumesExactly) {
  expect_exact_resume([](torch::nn::Module& net) {
    return std::make_unique<torch::optim::SGD>(
        net.parameters(),
        torch::optim::SGDOptions(0.05).momentum(0.9).nesterov(true).weight_decay(1e-4));
  });
}

TEST(CheckpointFormat, SgdWithDampeningResumesExactly) {
  expect_exact_resume([](torch::nn::Module& net) {
    return std::make_unique<torch::optim::SGD>(net.parameters(),
                                               torch::optim::SGDOptions(0.1).momentum(0.5).dampening(0.3));
  });
}

TEST(CheckpointFormat, AdamWithAmsgradAndTwoGroupsResumesExactly) {
  expect_exact_resume([](torch::nn::Module& net) {
    auto params = net.parameters();
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(std::vector<at::Tensor>(params.begin(), params.begin() + 2),
                        std::make_unique<torch::optim::AdamOptions>(
                            torch::optim::AdamOptions(1e-2).betas({0.5, 0.99}).amsgrad(true)));
    groups.emplace_back(std::vector<at::Tensor>(params.begin() + 2, params.end()),
                        std::make_unique<torch::optim::AdamOptions>(
                            torch::optim::AdamOptions(3e-3).weight_decay(1e-3).eps(1e-6)));
    return std::make_unique<torch::optim::Adam>(std::move(groups), torch::optim::AdamOptions(1e-3));
  });
}

TEST(CheckpointFormat, RestoresTheSavedLearningRatesAndStepCounts) {
  TempDir dir;
  auto net = small_net();
  torch::optim::Adam adam(net->parameters(), torch::optim::AdamOptions(1e-3));
  train_step(net, adam);
  train_step(net, adam);
  TrainingState state{{{"net", net.get()}}, {{"adam", &adam}}, c10::kCPU};
  save_checkpoint(dir / "c.ckpt", state, 1);
  static_cast<torch::optim::AdamOptions&>(adam.param_groups()[0].options()).lr(7.0);
  adam.state().clear();
  load_checkpoint(dir / "c.ckpt", state);
  EXPECT_EQ(static_cast<torch::optim::AdamOptions&>(adam.param_groups()[0].options()).lr(), 1e-3);
  ASSERT_EQ(adam.state().size(), net->parameters().size());
  for (const auto& [key, value] : adam.state()) {
    EXPECT_EQ(static_cast<torch::optim::AdamParamState&>(*value).step(), 2);
  }
}

// Offsets of one tensor's bytes in a safetensors file.
std::pair<uint64_t, uint64_t> data_range(const fs::path& path, const std::string& name) {
  const std::string bytes = read_file(path);
  uint64_t length = 0;
  for (int i = 7; i >= 0; --i) length = (length << 8) | static_cast<uint8_t>(bytes[i]);
  const auto header = nlohmann::json::parse(bytes.substr(8, length));
  const auto& offsets = header.at(name).at("data_offsets");
  return {8 + length + offsets[0].get<uint64_t>(), 8 + length + offsets[1].get<uint64_t>()};
}

class CheckpointIntegrity : public ::testing::Test {
 protected:
  void SetUp() override {
    at::manual_seed(3);
    train_step(net, sgd);
    save_checkpoint(dir / "c.ckpt", state, 5, {{"note", "x"}});
    bytes = read_file(dir / "c.ckpt");
  }
  std::string load_error(const std::string& content) {
    testing::write_bytes(dir / "t.ckpt", content);
    const auto before = snapshot(*fresh);
    const std::string message = error_of([&] { load_checkpoint(dir / "t.ckpt", fresh_state); });
    expect_equal(snapshot(*fresh), before);  // nothing changed
    return message;
  }
  TempDir dir;
  torch::nn::Sequential net = small_net();
  torch::optim::SGD sgd{net->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9)};
  TrainingState state{{{"net", net.get()}}, {{"sgd", &sgd}}, c10::kCPU};
  torch::nn::Sequential fresh = small_net();
  torch::optim::SGD fresh_sgd{fresh->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9)};
  TrainingState fresh_state{{{"net", fresh.get()}}, {{"sgd", &fresh_sgd}}, c10::kCPU};
  std::string bytes;
};

TEST_F(CheckpointIntegrity, AChangedTensorValueIsCaughtAndNamed) {
  const auto [begin, end] = data_range(dir / "c.ckpt", "module.net.3.weight");
  std::string edited = bytes;
  edited[begin + (end - begin) / 2] ^= 0x01;  // one bit of one weight
  EXPECT_THAT(load_error(edited), AllOf(HasSubstr("t.ckpt"), HasSubstr("'module.net.3.weight'"),
                                        HasSubstr("does not match its checksum")));
  const auto [m_begin, m_end] = data_range(dir / "c.ckpt", "optimizer.sgd.0.momentum_buffer");
  edited = bytes;
  edited[m_begin] ^= 0x40;
  EXPECT_THAT(load_error(edited), HasSubstr("'optimizer.sgd.0.momentum_buffer' does not match"));
}

TEST_F(CheckpointIntegrity, ChangedMetadataIsCaught) {
  std::string edited = bytes;
  const size_t at = edited.find("next_epoch\\\":5");
  ASSERT_NE(at, std::string::npos);
  edited[at + 13] = '7';
  EXPECT_THAT(load_error(edited), AllOf(HasSubstr("t.ckpt"), HasSubstr("metadata does not match")));
}

TEST_F(CheckpointIntegrity, TruncatedDamagedAndForeignFilesAreNamedErrors) {
  for (size_t length : {size_t{0}, size_t{7}, size_t{100}, bytes.size() / 2, bytes.size() - 1}) {
    EXPECT_THAT(load_error(bytes.substr(0, length)), HasSubstr("t.ckpt")) << length;
  }
  // Weights are safetensors too, but not a checkpoint.
  io::write_safetensors(dir / "weights.safetensors", io::StateDict{{"w", at::ones({2})}});
  EXPECT_THAT(load_error(read_file(dir / "weights.safetensors")), HasSubstr("not a qimera checkpoint"));
}

TEST_F(CheckpointIntegrity, AnotherModelOrOptimizerIsRefusedAndNothingChanges) {
  torch::optim::Adam adam(fresh->parameters());
  TrainingState adam_state{{{"net", fresh.get()}}, {{"sgd", &adam}}, c10::kCPU};
  const auto before = snapshot(*fresh);
  EXPECT_THAT(error_of([&] { load_checkpoint(dir / "c.ckpt", adam_state); }),
              AllOf(HasSubstr("c.ckpt"), HasSubstr("saved as sgd, but this run's is adam")));
  expect_equal(snapshot(*fresh), before);
  auto wider = torch::nn::Sequential(torch::nn::Conv2d(torch::nn::Conv2dOptions(2, 4, 3).padding(1)));
  TrainingState wider_state{{{"net", wider.get()}}, {}, c10::kCPU};
  EXPECT_THAT(error_of([&] { load_checkpoint(dir / "c.ckpt", wider_state); }),
              AllOf(HasSubstr("module.net.0.weight"), HasSubstr("[3, 2, 3, 3]")));
  at::Tensor missing = at::zeros({1});
  TrainingState with_tensor = fresh_state;
  with_tensor.tensors = {{"bank", &missing}};
  EXPECT_THAT(error_of([&] { load_checkpoint(dir / "c.ckpt", with_tensor); }),
              HasSubstr("no entry 'tensor.bank'"));
}

// A full disk, simulated with a file size limit (SIGXFSZ ignored, as the command line does).
TEST_F(CheckpointIntegrity, AFullDiskKeepsTheLastGoodCheckpointAndLeavesNoTemporaryFile) {
  train_step(net, sgd);
  const auto handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit previous{};
  ::getrlimit(RLIMIT_FSIZE, &previous);
  rlimit limit = previous;
  limit.rlim_cur = 4096;
  ::setrlimit(RLIMIT_FSIZE, &limit);
  const std::string message = error_of([&] { save_checkpoint(dir / "c.ckpt", state, 6); });
  ::setrlimit(RLIMIT_FSIZE, &previous);
  std::signal(SIGXFSZ, handler);
  EXPECT_THAT(message, AllOf(HasSubstr("cannot write"), HasSubstr("c.ckpt"),
                             HasSubstr("File too large"), Not(HasSubstr(".tmp-"))));
  EXPECT_EQ(read_file(dir / "c.ckpt"), bytes);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir.path())) names.push_back(e.path().filename());
  EXPECT_EQ(names, std::vector<std::string>{"c.ckpt"});
  EXPECT_EQ(load_checkpoint(dir / "c.ckpt", fresh_state).next_epoch, 5);
}

TEST_F(CheckpointIntegrity, AnUnwritableFolderIsAClearError) {
  testing::write_bytes(dir / "file", "x");
  EXPECT_THAT(error_of([&] { save_checkpoint(dir / "file/c.ckpt", state, 1); }),
              AllOf(HasSubstr("file/c.ckpt"), HasSubstr("cannot create folder")));
}

// LibTorch's archive reader runs TorchScript stored in the file (a crafted __setstate__ printed);
// such files are refused before any reader looks inside.
TEST_F(CheckpointIntegrity, OldLibTorchArchivesAreRefusedUnread) {
  torch::serialize::OutputArchive archive;
  archive.write("version", c10::IValue(int64_t{1}));
  archive.save_to((dir / "old.pt").string());
  EXPECT_THAT(error_of([&] { load_checkpoint(dir / "old.pt", fresh_state); }),
              AllOf(HasSubstr("old.pt"), HasSubstr("older LibTorch archive format")));
  EXPECT_THAT(error_of([&] { load_checkpoint(dir / "none.pt", fresh_state); }),
              HasSubstr("nothing to resume"));
}

TEST(CheckpointNames, MustBeUniqueAndDotFree) {
  TempDir dir;
  auto net = small_net();
  TrainingState dotted{{{"a.b", net.get()}}, {}, c10::kCPU};
  EXPECT_THAT(error_of([&] { save_checkpoint(dir / "c", dotted, 0); }), HasSubstr("'a.b'"));
  TrainingState twice{{{"a", net.get()}, {"a", net.get()}}, {}, c10::kCPU};
  EXPECT_THAT(error_of([&] { save_checkpoint(dir / "c", twice, 0); }), HasSubstr("two modules"));
}

}  // namespace
}  // namespace qimera::methods
