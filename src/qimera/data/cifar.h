// The CIFAR-10 and CIFAR-100 binary versions (cifar-10-binary.tar.gz, cifar-100-binary.tar.gz):
// fixed-size records of label byte(s) followed by a 32x32 RGB image stored channel-major.
#pragma once

#include "qimera/data/dataset.h"

#include <filesystem>
#include <memory>
#include <string>

namespace qimera::data {

enum class Cifar100Labels { fine, coarse };

/// `path` is the cifar-10-batches-bin folder, the folder holding it, or one .bin file (then
/// `split` is ignored). split "train" reads data_batch_1..5.bin in order, "test" test_batch.bin.
std::shared_ptr<TensorDataset> open_cifar10(const std::filesystem::path& path,
                                            const std::string& split);

/// `path` is the cifar-100-binary folder, the folder holding it, or one .bin file; split "train"
/// reads train.bin, "test" test.bin. Fine labels (100 classes) by default, else coarse (20).
std::shared_ptr<TensorDataset> open_cifar100(const std::filesystem::path& path,
                                             const std::string& split,
                                             Cifar100Labels labels = Cifar100Labels::fine);

}  // namespace qimera::data
