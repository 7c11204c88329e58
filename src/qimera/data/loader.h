// Batches for evaluation and training: shuffled (or not) per epoch, preprocessed and augmented by a
// few worker threads ahead of the consumer, delivered in order, normalized on the target device.
#pragma once

#include "qimera/data/augment.h"
#include "qimera/data/dataset.h"
#include "qimera/data/preprocess.h"

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

namespace qimera::data {

struct LoaderOptions {
  int64_t batch_size = 256;
  bool shuffle = false;
  bool drop_last = false;  // skip a last, smaller batch
  Augment augment;
  int workers = 2;   // threads assembling batches; 0 = in the caller's thread
  int prefetch = 4;  // batches prepared ahead of the consumer at most
  uint64_t seed = 0;
  c10::Device device = c10::kCPU;
};

struct Batch {
  at::Tensor images;  // float [N,C,H,W], normalized, on the device
  at::Tensor labels;  // int64 [N], on the device
};

class BatchLoader {
 public:
  /// Validates the options and the preprocessing (not the images: the first batch does that).
  BatchLoader(std::shared_ptr<const Dataset> dataset, Preprocess preprocess, LoaderOptions options);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  int64_t batches_per_epoch() const;
  int64_t samples_per_epoch() const;

  /// Begins `epoch` (abandoning any unfinished one). Its order depends only on (seed, epoch).
  void start_epoch(int64_t epoch);
  /// The epoch's next batch, or nullopt when it is over. Starts epoch 0 if none was started.
  /// An error while loading a batch is rethrown here, in order, and again on later calls until
  /// start_epoch.
  std::optional<Batch> next();

  /// The dataset indices of `epoch` in the order they are served (before drop_last).
  std::vector<int64_t> epoch_order(int64_t epoch) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qimera::data
