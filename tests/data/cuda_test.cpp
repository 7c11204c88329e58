#include "qimera/data/dataset.h"
#include "qimera/data/loader.h"
#include "support/cuda.h"

#include <ATen/ATen.h>

namespace qimera::data {
namespace {

TEST(Cuda, LoaderDeliversTheCpuBatchesOnTheGpu) {
  QIMERA_REQUIRE_CUDA();
  at::manual_seed(0);
  auto dataset = std::make_shared<TensorDataset>(at::randint(0, 256, {50, 3, 8, 8}).to(at::kByte),
                                                 at::randint(0, 5, {50}), 5, "random");
  LoaderOptions cpu;
  cpu.batch_size = 16;
  cpu.shuffle = true;
  cpu.augment.crop_padding = 2;
  cpu.augment.horizontal_flip = true;
  auto gpu = cpu;
  gpu.device = c10::kCUDA;
  BatchLoader a(dataset, preprocess_preset("cifar10"), cpu);
  BatchLoader b(dataset, preprocess_preset("cifar10"), gpu);
  for (int64_t epoch = 0; epoch < 2; ++epoch) {
    a.start_epoch(epoch);
    b.start_epoch(epoch);
    while (auto x = a.next()) {
      auto y = b.next();
      ASSERT_TRUE(y.has_value());
      EXPECT_TRUE(y->images.is_cuda());
      EXPECT_TRUE(at::allclose(x->images, y->images.cpu(), 1e-6, 1e-6));
      EXPECT_TRUE(at::equal(x->labels, y->labels.cpu()));
    }
    EXPECT_FALSE(b.next().has_value());
  }
}

}  // namespace
}  // namespace qimera::data
