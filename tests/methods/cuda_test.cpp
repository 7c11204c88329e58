#include "methods/support.h"
#include "qimera/data/loader.h"
#include "qimera/eval/evaluate.h"
#include "qimera/models/zoo.h"
#include "support/cuda.h"
#include "support/test_support.h"

#include <ATen/ATen.h>

namespace qimera::methods {
namespace {

TEST(Cuda, DataFreeRunResumesOnTheGpu) {
  QIMERA_REQUIRE_CUDA();
  auto teacher = models::clone_model(*support::trained_tiny_teacher(10, 16));
  teacher->to(c10::kCUDA);
  const nlohmann::json options{{"epochs", 3},        {"iterations", 10},    {"batch_size", 32},
                               {"warmup_epochs", 1}, {"observe_epochs", 1}, {"lr_q", 1e-4}};
  data::LoaderOptions loading;
  loading.batch_size = 200;
  loading.device = c10::kCUDA;
  data::BatchLoader test(support::pattern_dataset(10, 100, 16, 99), support::pattern_preprocess(), loading);
  qimera::testing::TempDir dir;
  auto first = options;
  first["epochs"] = 2;
  support::run_method_named("qimera", first, models::clone_model(*teacher), dir.path(), &test, false,
                            c10::kCUDA);
  const auto outcome = support::run_method_named("qimera", options, models::clone_model(*teacher),
                                                 dir.path(), &test, true, c10::kCUDA);
  const auto& result = *outcome.run;
  ASSERT_EQ(result.history.size(), 3u);
  EXPECT_TRUE(result.final_epoch->test.has_value());
  EXPECT_GT(result.final_epoch->test->top1, 20.0);
  EXPECT_TRUE(outcome.quantized->parameters().front().is_cuda());
}

}  // namespace
}  // namespace qimera::methods
