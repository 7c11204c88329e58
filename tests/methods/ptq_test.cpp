#include "methods/support.h"
#include "qimera/core/error.h"
#include "qimera/methods/checkpoint.h"
#include "qimera/methods/ptq.h"
#include "qimera/methods/schedule.h"
#include "qimera/models/zoo.h"
#include "support/test_support.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/optim/sgd.h>

namespace qimera::methods {
namespace {

using qimera::testing::TempDir;

TEST(Ptq, CalibratesAndFixesRangesWithoutTouchingTheTeacher) {
  auto p = models::build_model(models::ModelSpec{models::Arch::ResNet20Cifar, 10, 3, 16});
  p->eval();
  const auto x = at::randn({4, 3, 16, 16});
  at::NoGradGuard no_grad;
  const auto before = p->forward(x);
  auto q = post_training_quantize(*p, quant::QuantConfig{}, CalibrationOptions{},
                                  gaussian_batches(p->spec(), 16, c10::kCPU, 3));
  EXPECT_TRUE(at::equal(p->forward(x), before));
  const auto hi = q->named_buffers()["features.init_block.activ.observer_hi"].item<float>();
  EXPECT_GT(hi, 0.0f);
  q->forward(x * 100);  // ranges are fixed: a wild batch changes nothing
  EXPECT_EQ(q->named_buffers()["features.init_block.activ.observer_hi"].item<float>(), hi);
  // Min/max calibration saw the batch maxima: the range holds the first ReLU's maximum.
  EXPECT_NEAR(q->named_buffers()["features.init_block.activ.observer_aux"].item<float>(), 8.0, 0);
}

TEST(Ptq, GaussianBatchesAreReproducible) {
  const models::ModelSpec spec{models::Arch::ResNet20Cifar, 10, 1, 8};
  auto a = gaussian_batches(spec, 2, c10::kCPU, 5);
  auto b = gaussian_batches(spec, 2, c10::kCPU, 5);
  const auto first = a();
  EXPECT_EQ(first.sizes(), (std::vector<int64_t>{2, 1, 8, 8}));
  EXPECT_TRUE(at::equal(first, b()));
  EXPECT_FALSE(at::equal(a(), first));
}

TEST(Schedule, MultiStepCosineConstant) {
  const auto m = LrSchedule::parse("multistep:100,200,300", 0.1);
  EXPECT_DOUBLE_EQ(m.factor(0, 400), 1.0);
  EXPECT_DOUBLE_EQ(m.factor(99, 400), 1.0);
  EXPECT_NEAR(m.factor(100, 400), 0.1, 1e-12);
  EXPECT_NEAR(m.factor(399, 400), 1e-3, 1e-12);
  const auto c = LrSchedule::parse("cosine");
  EXPECT_DOUBLE_EQ(c.factor(0, 10), 1.0);
  EXPECT_NEAR(c.factor(5, 10), 0.5, 1e-12);
  EXPECT_DOUBLE_EQ(LrSchedule::parse("constant").factor(7, 10), 1.0);
  EXPECT_EQ(m.to_string(), "multistep:100,200,300");
  EXPECT_THROW(LrSchedule::parse("multistep:5,x"), Error);
  EXPECT_THROW(LrSchedule::parse("multistep:5,3"), Error);
  EXPECT_THROW(LrSchedule::parse("linear"), Error);
}

TEST(Checkpoint, RestoresModulesOptimizersAndRandomState) {
  TempDir dir;
  at::manual_seed(1);
  auto model = models::build_model(models::ModelSpec{models::Arch::ResNet20Cifar, 10, 1, 8});
  torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  const auto step = [&] {
    const auto loss = model->forward(at::randn({2, 1, 8, 8})).square().mean();
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
  };
  step();
  TrainingState state{{{"model", model.get()}}, {{"sgd", &optimizer}}, c10::kCPU};
  save_checkpoint(dir / "c.pt", state, 5, {{"note", "x"}});
  step();  // the reference continuation
  std::vector<at::Tensor> expected;
  for (const auto& p : model->parameters()) expected.push_back(p.detach().clone());

  at::manual_seed(99);
  auto other = models::build_model(models::ModelSpec{models::Arch::ResNet20Cifar, 10, 1, 8});
  torch::optim::SGD other_optimizer(other->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  TrainingState other_state{{{"model", other.get()}}, {{"sgd", &other_optimizer}}, c10::kCPU};
  const auto info = load_checkpoint(dir / "c.pt", other_state);
  EXPECT_EQ(info.next_epoch, 5);
  EXPECT_EQ(info.extra["note"], "x");
  model = other;
  optimizer.zero_grad();
  const auto loss = other->forward(at::randn({2, 1, 8, 8})).square().mean();
  other_optimizer.zero_grad();
  loss.backward();
  other_optimizer.step();
  size_t i = 0;
  for (const auto& p : other->parameters()) EXPECT_TRUE(at::equal(p, expected[i++]));
}

TEST(Checkpoint, CorruptOrMissingFilesAreClearErrors) {
  TempDir dir;
  auto model = models::build_model(models::ModelSpec{models::Arch::ResNet20Cifar, 10, 1, 8});
  TrainingState state{{{"model", model.get()}}, {}, c10::kCPU};
  EXPECT_THROW(load_checkpoint(dir / "none.pt", state), Error);
  qimera::testing::write_bytes(dir / "bad.pt", "PK\x03\x04 not really a zip");
  EXPECT_NE(qimera::testing::error_of([&] { load_checkpoint(dir / "bad.pt", state); }).find("bad.pt"),
            std::string::npos);
}

}  // namespace
}  // namespace qimera::methods
