#include "qimera/data/image_folder.h"

#include "qimera/core/atomic_file.h"
#include "qimera/core/error.h"
#include "qimera/data/image_codec.h"

#include <algorithm>
#include <cctype>

namespace qimera::data {
namespace fs = std::filesystem;
namespace {

bool is_image_file(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

std::vector<std::string> class_folders(const fs::path& root) {
  require(fs::is_directory(root), "{}: not a folder (expected one sub-folder per class)",
          root.string());
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(root)) {
    if (entry.is_directory()) names.push_back(entry.path().filename().string());
  }
  require(!names.empty(), "{}: no class sub-folders (expected one sub-folder per class)",
          root.string());
  std::sort(names.begin(), names.end());
  return names;
}

/// Images under `folder`, in the order of torchvision's sorted(os.walk(...)) then sorted(files).
std::vector<fs::path> images_under(const fs::path& folder) {
  std::vector<fs::path> files;
  for (const auto& entry :
       fs::recursive_directory_iterator(folder, fs::directory_options::follow_directory_symlink)) {
    if (entry.is_regular_file() && is_image_file(entry.path())) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end(), [](const fs::path& a, const fs::path& b) {
    const auto pa = a.parent_path().string(), pb = b.parent_path().string();
    return pa != pb ? pa < pb : a.filename().string() < b.filename().string();
  });
  return files;
}

}  // namespace

ImageFolderDataset::ImageFolderDataset(fs::path root) : root_(std::move(root)) {
  try {
    scan();
  } catch (const fs::filesystem_error& e) {
    fail("{}: cannot scan the image folder: {}", root_.string(), e.what());
  }
}

void ImageFolderDataset::scan() {
  classes_ = class_folders(root_);
  for (size_t label = 0; label < classes_.size(); ++label) {
    const fs::path folder = root_ / classes_[label];
    const auto images = images_under(folder);
    require(!images.empty(), "{}: class folder without .jpg/.jpeg/.png images", folder.string());
    files_.insert(files_.end(), images.begin(), images.end());
    labels_.insert(labels_.end(), images.size(), static_cast<int64_t>(label));
  }
}

Example ImageFolderDataset::get(int64_t index) const {
  const fs::path& path = file(index);
  // A compressed image holds far less than the pixels it may decode to (kMaxImagePixels).
  constexpr uint64_t kMaxImageFileBytes = uint64_t{256} << 20;
  return {decode_image(read_file(path, kMaxImageFileBytes), path.string()),
          labels_[static_cast<size_t>(index)]};
}

std::string ImageFolderDataset::description() const {
  return fmt::format("image folder {} ({} images, {} classes)", root_.string(), files_.size(),
                     classes_.size());
}

const fs::path& ImageFolderDataset::file(int64_t index) const {
  check_index(index, size(), description());
  return files_[static_cast<size_t>(index)];
}

}  // namespace qimera::data
