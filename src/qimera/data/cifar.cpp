#include "qimera/data/cifar.h"

#include "qimera/core/atomic_file.h"
#include "qimera/core/error.h"

#include <ATen/ATen.h>

#include <cstring>

namespace qimera::data {
namespace fs = std::filesystem;
namespace {

constexpr int64_t kImageBytes = 3 * 32 * 32;

const std::vector<std::string> kCifar10Names = {"airplane", "automobile", "bird",  "cat",  "deer",
                                                "dog",      "frog",       "horse", "ship", "truck"};

const std::vector<std::string> kCifar100Coarse = {"aquatic_mammals",
                                                  "fish",
                                                  "flowers",
                                                  "food_containers",
                                                  "fruit_and_vegetables",
                                                  "household_electrical_devices",
                                                  "household_furniture",
                                                  "insects",
                                                  "large_carnivores",
                                                  "large_man-made_outdoor_things",
                                                  "large_natural_outdoor_scenes",
                                                  "large_omnivores_and_herbivores",
                                                  "medium_mammals",
                                                  "non-insect_invertebrates",
                                                  "people",
                                                  "reptiles",
                                                  "small_mammals",
                                                  "trees",
                                                  "vehicles_1",
                                                  "vehicles_2"};

const std::vector<std::string> kCifar100Fine = {
    "apple",       "aquarium_fish", "baby",      "bear",       "beaver",       "bed",
    "bee",         "beetle",        "bicycle",   "bottle",     "bowl",         "boy",
    "bridge",      "bus",           "butterfly", "camel",      "can",          "castle",
    "caterpillar", "cattle",        "chair",     "chimpanzee", "clock",        "cloud",
    "cockroach",   "couch",         "crab",      "crocodile",  "cup",          "dinosaur",
    "dolphin",     "elephant",      "flatfish",  "forest",     "fox",          "girl",
    "hamster",     "house",         "kangaroo",  "keyboard",   "lamp",         "lawn_mower",
    "leopard",     "lion",          "lizard",    "lobster",    "man",          "maple_tree",
    "motorcycle",  "mountain",      "mouse",     "mushroom",   "oak_tree",     "orange",
    "orchid",      "otter",         "palm_tree", "pear",       "pickup_truck", "pine_tree",
    "plain",       "plate",         "poppy",     "porcupine",  "possum",       "rabbit",
    "raccoon",     "ray",           "road",      "rocket",     "rose",         "sea",
    "seal",        "shark",         "shrew",     "skunk",      "skyscraper",   "snail",
    "snake",       "spider",        "squirrel",  "streetcar",  "sunflower",    "sweet_pepper",
    "table",       "tank",          "telephone", "television", "tiger",        "tractor",
    "train",       "trout",         "tulip",     "turtle",     "wardrobe",     "whale",
    "willow_tree", "wolf",          "woman",     "worm"};

/// How one variant lays out its records.
struct RecordFormat {
  const char* name;     // "CIFAR-10"
  int64_t label_bytes;  // label bytes before the image
  int64_t label_index;  // which of them is the label used
  int64_t num_classes;
};

struct Records {
  at::Tensor images;
  at::Tensor labels;
};

Records read_records(const fs::path& file, const RecordFormat& format) {
  const std::string bytes = read_file(file);
  const int64_t record = format.label_bytes + kImageBytes;
  const auto size = static_cast<int64_t>(bytes.size());
  require(size > 0 && size % record == 0,
          "{}: truncated or not a {} binary file: {} bytes is not a whole number of {}-byte "
          "records",
          file.string(), format.name, size, record);
  const int64_t count = size / record;
  auto table = at::empty({count, record}, at::kByte);
  std::memcpy(table.data_ptr<uint8_t>(), bytes.data(), bytes.size());
  auto labels = table.select(1, format.label_index).to(at::kLong);
  const auto bad = (labels >= format.num_classes).nonzero();
  if (bad.size(0) > 0) {
    const int64_t index = bad[0][0].item<int64_t>();
    fail("{}: record {} has label {}, outside 0..{} (is this really a {} file?)", file.string(),
         index, labels[index].item<int64_t>(), format.num_classes - 1, format.name);
  }
  auto images = table.narrow(1, format.label_bytes, kImageBytes).reshape({count, 3, 32, 32});
  return {images.contiguous(), labels};
}

/// The folder holding the batch files: `path` itself or its sub-folder `inner`.
fs::path batches_folder(const fs::path& path, const std::string& inner, const char* name) {
  require(fs::exists(path), "{}: no such file or folder (expected the {} binary data)",
          path.string(), name);
  if (fs::is_directory(path / inner)) return path / inner;
  return path;
}

std::vector<fs::path> split_files(const fs::path& path, const std::string& split,
                                  const std::string& inner, const char* name,
                                  const std::vector<std::string>& train,
                                  const std::vector<std::string>& test) {
  if (fs::is_regular_file(path)) return {path};
  require(split == "train" || split == "test", "{}: unknown split '{}' (expected train or test)",
          name, split);
  const fs::path folder = batches_folder(path, inner, name);
  std::vector<fs::path> files;
  for (const auto& file : split == "train" ? train : test) {
    files.push_back(folder / file);
    require(fs::is_regular_file(files.back()), "{}: missing {} {} file", files.back().string(),
            name, split);
  }
  return files;
}

std::shared_ptr<TensorDataset> load(const std::vector<fs::path>& files, const RecordFormat& format,
                                    const std::string& split, std::vector<std::string> names) {
  std::vector<at::Tensor> images;
  std::vector<at::Tensor> labels;
  for (const auto& file : files) {
    auto records = read_records(file, format);
    images.push_back(std::move(records.images));
    labels.push_back(std::move(records.labels));
  }
  auto all_images = images.size() == 1 ? images[0] : at::cat(images);
  auto all_labels = labels.size() == 1 ? labels[0] : at::cat(labels);
  const fs::path where = files.size() == 1 ? files[0] : files[0].parent_path();
  auto description = fmt::format("{} {} ({} images) from {}", format.name, split,
                                 all_images.size(0), where.string());
  return std::make_shared<TensorDataset>(std::move(all_images), std::move(all_labels),
                                         format.num_classes, std::move(description),
                                         std::move(names));
}

}  // namespace

std::shared_ptr<TensorDataset> open_cifar10(const fs::path& path, const std::string& split) {
  const RecordFormat format{"CIFAR-10", 1, 0, 10};
  const auto files = split_files(path, split, "cifar-10-batches-bin", format.name,
                                 {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                  "data_batch_4.bin", "data_batch_5.bin"},
                                 {"test_batch.bin"});
  return load(files, format, split, kCifar10Names);
}

std::shared_ptr<TensorDataset> open_cifar100(const fs::path& path, const std::string& split,
                                             Cifar100Labels labels) {
  const bool fine = labels == Cifar100Labels::fine;
  const RecordFormat format{"CIFAR-100", 2, fine ? 1 : 0, fine ? 100 : 20};
  const auto files =
      split_files(path, split, "cifar-100-binary", format.name, {"train.bin"}, {"test.bin"});
  return load(files, format, split, fine ? kCifar100Fine : kCifar100Coarse);
}

}  // namespace qimera::data
