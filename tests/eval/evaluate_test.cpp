#include "qimera/eval/evaluate.h"
#include "qimera/eval/input_check.h"

#include "qimera/core/error.h"
#include "qimera/data/dataset.h"
#include "support/test_support.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <stdexcept>

namespace qimera::eval {
namespace {

// 10 images, 6 classes: image i has all pixels equal to i, label i % 6.
std::shared_ptr<data::TensorDataset> numbered_dataset() {
  auto images = at::arange(10, at::kByte).reshape({10, 1, 1, 1}).expand({10, 1, 2, 2}).contiguous();
  auto labels = at::arange(10, at::kLong).remainder(6);
  return std::make_shared<data::TensorDataset>(images, labels, 6, "numbered");
}

data::LoaderOptions options(int64_t batch) {
  data::LoaderOptions o;
  o.batch_size = batch;
  o.workers = 1;
  return o;
}

// Logits that rank class `first[i]` first and `second[i]` second for image i (pixel value i*255
// after "none" normalisation gives back i).
at::Tensor ranked_logits(const at::Tensor& images) {
  const auto index = (images.select(1, 0).select(1, 0).select(1, 0) * 255).round().to(at::kLong);
  auto logits = at::zeros({images.size(0), 6});
  for (int64_t r = 0; r < images.size(0); ++r) {
    const int64_t i = index[r].item<int64_t>();
    const int64_t label = i % 6;
    // Images 0-3: right first. Images 4-6: right label ranked 3rd (top-5 hit). 7-9: ranked last.
    if (i <= 3) {
      logits[r][label] = 10;
    } else if (i <= 6) {
      logits[r][(label + 1) % 6] = 10;
      logits[r][(label + 2) % 6] = 9;
      logits[r][label] = 8;
    } else {
      logits[r] = 5;
      logits[r][label] = -10;
    }
  }
  return logits;
}

TEST(Evaluate, CountsTopOneAndTopFive) {
  for (int64_t batch : {1, 3, 10}) {
    data::BatchLoader loader(numbered_dataset(), data::preprocess_preset("none"), options(batch));
    const auto acc = evaluate(ranked_logits, loader);
    EXPECT_EQ(acc.samples, 10);
    EXPECT_DOUBLE_EQ(acc.top1, 40.0) << batch;
    EXPECT_DOUBLE_EQ(acc.top5, 70.0) << batch;
    EXPECT_GT(acc.images_per_second(), 0.0);
  }
}

TEST(Evaluate, RejectsWrongLogitShapes) {
  data::BatchLoader loader(numbered_dataset(), data::preprocess_preset("none"), options(4));
  EXPECT_THROW(evaluate([](const at::Tensor& x) { return at::zeros({1, 6}); }, loader), Error);
}

// A model whose forward throws must not be left in eval mode: a caller that catches the error and
// trains on would train with frozen batch-norm statistics.
TEST(InEvalMode, MeasuresInEvalModeAndRestoresTheModeAlsoOnError) {
  torch::nn::Module model;
  for (const bool training : {true, false}) {
    model.train(training);
    EXPECT_FALSE(in_eval_mode(model, [&] { return model.is_training(); }));
    EXPECT_EQ(model.is_training(), training);
    EXPECT_THROW(in_eval_mode(model, [&]() -> int { throw std::runtime_error("forward failed"); }),
                 std::runtime_error);
    EXPECT_EQ(model.is_training(), training);
  }
}

struct FailingModel : torch::nn::Module {
  at::Tensor forward(const at::Tensor&) { throw std::runtime_error("forward failed"); }
};

TEST(InEvalMode, EvaluateModelRestoresTrainModeWhenTheForwardThrows) {
  FailingModel model;
  data::BatchLoader loader(numbered_dataset(), data::preprocess_preset("none"), options(4));
  EXPECT_THROW(evaluate_model(model, loader), std::runtime_error);
  EXPECT_TRUE(model.is_training());
}

// The IDX file of one 4000 x 4000 image made a 28 x 28 model run on it (4.3 GB).
TEST(ModelInput, DataOfAnotherSizeIsRefusedBeforeAnyBatch) {
  const models::ModelSpec spec{models::Arch::ResNet20Cifar, 10, 1, 28};
  const auto big = std::make_shared<data::TensorDataset>(at::zeros({1, 1, 4000, 4000}, at::kByte),
                                                         at::zeros({1}, at::kLong), 10, "huge.idx");
  const std::string message =
      testing::error_of([&] { require_model_input(*big, data::preprocess_preset("none"), spec); });
  EXPECT_NE(message.find("huge.idx: images are 1x4000x4000"), std::string::npos) << message;
  EXPECT_NE(message.find("takes 1x28x28"), std::string::npos) << message;
  const auto grey = std::make_shared<data::TensorDataset>(at::zeros({1, 1, 28, 28}, at::kByte),
                                                          at::zeros({1}, at::kLong), 10, "grey");
  EXPECT_NO_THROW(require_model_input(*grey, data::preprocess_preset("none"), spec));
  const models::ModelSpec rgb{models::Arch::ResNet20Cifar, 10, 3, 28};
  EXPECT_NE(testing::error_of([&] { require_model_input(*grey, data::preprocess_preset("none"), rgb); })
                .find("grey_to_rgb"),
            std::string::npos);
  auto preprocess = data::preprocess_preset("none");
  preprocess.grey_to_rgb = true;
  EXPECT_NO_THROW(require_model_input(*grey, preprocess, rgb));
}

}  // namespace
}  // namespace qimera::eval
