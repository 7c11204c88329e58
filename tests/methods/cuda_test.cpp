#include "methods/support.h"
#include "qimera/data/loader.h"
#include "qimera/eval/evaluate.h"
#include "qimera/methods/data_free.h"
#include "qimera/models/zoo.h"
#include "support/cuda.h"
#include "support/test_support.h"

#include <ATen/ATen.h>

namespace qimera::methods {
namespace {

TEST(Cuda, DataFreeRunResumesOnTheGpu) {
  QIMERA_REQUIRE_CUDA();
  auto teacher = testing::trained_tiny_teacher(10, 16);
  teacher->to(c10::kCUDA);
  DataFreeOptions o;
  o.epochs = 3;
  o.iterations = 10;
  o.batch_size = 32;
  o.warmup_epochs = 1;
  o.observe_epochs = 1;
  o.lr_q = 1e-4;
  data::LoaderOptions loading;
  loading.batch_size = 200;
  loading.device = c10::kCUDA;
  data::BatchLoader test(testing::pattern_dataset(10, 100, 16, 99), testing::pattern_preprocess(), loading);
  qimera::testing::TempDir dir;
  auto first = o;
  first.epochs = 2;
  DataFreeTrainer a(models::clone_model(*teacher), first, c10::kCUDA);
  a.run(dir.path(), false, &test);
  DataFreeTrainer b(models::clone_model(*teacher), o, c10::kCUDA);
  const auto result = b.run(dir.path(), true, &test);
  ASSERT_EQ(result.history.size(), 3u);
  EXPECT_TRUE(result.final_epoch->test.has_value());
  EXPECT_GT(result.final_epoch->test->top1, 20.0);
  EXPECT_TRUE(b.quantized()->parameters().front().is_cuda());
}

}  // namespace
}  // namespace qimera::methods
