// The teachers shipped in assets/: each card loads strictly (every weight present, finite), describes
// the network its weights fit, and reports the same final-epoch accuracy as the run's own records
// (result.json, the last line of metrics.jsonl), so weights and card cannot drift apart unnoticed.
#include "qimera/core/json_file.h"
#include "qimera/deploy/model_card.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <string>

namespace qimera::deploy {
namespace {
namespace fs = std::filesystem;

struct Bundled {
  std::string folder;
  int64_t channels, image_size;
  double top1;
};

class BundledTeacher : public ::testing::TestWithParam<Bundled> {};

nlohmann::json last_json_line(const fs::path& path) {
  std::ifstream in(path);
  std::string line, last;
  while (std::getline(in, line)) {
    if (!line.empty()) last = line;
  }
  return nlohmann::json::parse(last);
}

TEST_P(BundledTeacher, LoadsAndAgreesWithItsTrainingRecords) {
  const auto& b = GetParam();
  const fs::path dir = fs::path(QIMERA_SOURCE_DIR) / "assets" / b.folder;
  const auto card = read_model_card(dir / "model.json");
  EXPECT_EQ(card.spec.in_channels, b.channels);
  EXPECT_EQ(card.spec.image_size, b.image_size);
  EXPECT_EQ(card.spec.num_classes, 10);
  EXPECT_EQ(card.class_names.size(), 10u);
  EXPECT_EQ(card.preprocess.mean.size(), static_cast<size_t>(b.channels));
  EXPECT_DOUBLE_EQ(card.provenance["test_top1_final_epoch"].get<double>(), b.top1);
  EXPECT_DOUBLE_EQ(read_json(dir / "result.json")["test_final_epoch"]["top1"].get<double>(), b.top1);
  EXPECT_DOUBLE_EQ(last_json_line(dir / "metrics.jsonl")["test_top1"].get<double>(), b.top1);

  auto model = load_classifier(card, c10::kCPU);
  at::NoGradGuard no_grad;
  const auto logits = model->forward(at::zeros({2, b.channels, b.image_size, b.image_size}));
  EXPECT_EQ(logits.sizes(), (at::IntArrayRef{2, 10}));
  EXPECT_TRUE(logits.isfinite().all().item<bool>());
  // Trained, not initialised: batch-norm running statistics moved away from (0, 1).
  EXPECT_GT(model->batch_norms().front()->running_var.sub(1).abs().max().item<double>(), 0.1);
}

INSTANTIATE_TEST_SUITE_P(Assets, BundledTeacher,
                         ::testing::Values(Bundled{"fmnist-resnet20", 1, 28, 95.09},
                                           Bundled{"cifar10-resnet20", 3, 32, 83.83},
                                           Bundled{"mnist-resnet20", 1, 28, 99.68}),
                         [](const auto& info) {
                           std::string name = info.param.folder;
                           for (auto& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace qimera::deploy
