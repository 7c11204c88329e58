// IDX files (the MNIST format): a big-endian header of magic number and dimensions, then raw bytes.
#pragma once

#include "qimera/data/dataset.h"

#include <ATen/core/Tensor.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace qimera::data {

/// uint8 [N,1,H,W] from an idx3-ubyte file (magic 0x00000803).
at::Tensor read_idx_images(const std::filesystem::path& path);

/// int64 [N] from an idx1-ubyte file (magic 0x00000801).
at::Tensor read_idx_labels(const std::filesystem::path& path);

/// An image file and its label file as a data set. num_classes <= 0 means max label + 1; a label
/// outside 0..num_classes-1 is an error naming the label file and the record.
std::shared_ptr<TensorDataset> open_idx(const std::filesystem::path& images,
                                        const std::filesystem::path& labels,
                                        int64_t num_classes = 0, std::string description = "",
                                        std::vector<std::string> class_names = {});

/// Writes uint8 [N,H,W] or [N,1,H,W] as idx3-ubyte, atomically.
void write_idx_images(const std::filesystem::path& path, const at::Tensor& images);

/// Writes integer labels [N] with values 0..255 as idx1-ubyte, atomically.
void write_idx_labels(const std::filesystem::path& path, const at::Tensor& labels);

}  // namespace qimera::data
