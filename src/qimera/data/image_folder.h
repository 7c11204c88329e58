// ImageNet-style folders, read like torchvision's ImageFolder: one sub-folder per class, classes
// numbered in sorted name order, images found recursively and decoded only when requested.
#pragma once

#include "qimera/data/dataset.h"

#include <filesystem>
#include <string>
#include <vector>

namespace qimera::data {

class ImageFolderDataset : public Dataset {
 public:
  /// Scans `root` (not the images themselves). Files ending .jpg/.jpeg/.png in any letter case
  /// are images; other files are ignored. A class folder without images, or a root without class
  /// folders, is an error.
  explicit ImageFolderDataset(std::filesystem::path root);

  int64_t size() const override { return static_cast<int64_t>(files_.size()); }
  /// Reads and decodes the image (RGB uint8 [3,H,W]); errors name the file.
  Example get(int64_t index) const override;
  int64_t num_classes() const override { return static_cast<int64_t>(classes_.size()); }
  std::string description() const override;
  std::vector<std::string> class_names() const override { return classes_; }

  const std::filesystem::path& file(int64_t index) const;

 private:
  void scan();

  std::filesystem::path root_;
  std::vector<std::string> classes_;
  std::vector<std::filesystem::path> files_;
  std::vector<int64_t> labels_;
};

}  // namespace qimera::data
