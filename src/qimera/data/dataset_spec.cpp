#include "qimera/data/dataset_spec.h"

#include "qimera/core/error.h"
#include "qimera/data/cifar.h"
#include "qimera/data/idx.h"
#include "qimera/data/image_folder.h"
#include "qimera/data/prepared.h"

#include <cstdlib>

namespace qimera::data {
namespace fs = std::filesystem;
namespace {

constexpr const char* kForms =
    "accepted forms: mnist[:train|:test], fashion-mnist[:train|:test], "
    "cifar10:PATH[:train|:test], cifar100:PATH[:train|:test], folder:PATH, "
    "idx:IMAGES_FILE,LABELS_FILE";

bool is_split(const std::string& s) { return s == "train" || s == "test"; }

/// "PATH[:split]" -> (PATH, split); the split defaults to test.
std::pair<std::string, std::string> path_and_split(const std::string& rest) {
  const auto colon = rest.rfind(':');
  if (colon != std::string::npos && is_split(rest.substr(colon + 1))) {
    return {rest.substr(0, colon), rest.substr(colon + 1)};
  }
  return {rest, "test"};
}

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? "" : value;
}

}  // namespace

DatasetSpec parse_dataset_spec(const std::string& text) {
  const auto colon = text.find(':');
  const std::string kind = text.substr(0, colon);
  const std::string rest = colon == std::string::npos ? "" : text.substr(colon + 1);
  if (kind == "mnist" || kind == "fashion-mnist") {
    require(rest.empty() || is_split(rest), "data set '{}': unknown split '{}' ({})", text, rest,
            kForms);
    return {kind, "", rest.empty() ? "test" : rest};
  }
  require(kind == "cifar10" || kind == "cifar100" || kind == "folder" || kind == "idx",
          "data set '{}': unknown kind '{}' ({})", text, kind, kForms);
  require(!rest.empty(), "data set '{}': {} needs a path ({})", text, kind, kForms);
  if (kind == "folder") return {kind, rest, ""};
  if (kind == "idx") {
    const auto comma = rest.find(',');
    require(comma != std::string::npos && comma > 0 && comma + 1 < rest.size(),
            "data set '{}': idx needs IMAGES_FILE,LABELS_FILE ({})", text, kForms);
    return {kind, rest, ""};
  }
  auto [path, split] = path_and_split(rest);
  require(!path.empty(), "data set '{}': {} needs a path ({})", text, kind, kForms);
  return {kind, path, split};
}

std::string to_string(const DatasetSpec& spec) {
  std::string text = spec.kind;
  if (!spec.path.empty()) text += ":" + spec.path;
  if (!spec.split.empty()) text += ":" + spec.split;
  return text;
}

std::shared_ptr<Dataset> open_dataset(const DatasetSpec& spec, const fs::path& data_root) {
  if (spec.kind == "mnist" || spec.kind == "fashion-mnist") {
    return open_prepared(spec.kind, data_root, spec.split);
  }
  if (spec.kind == "cifar10") return open_cifar10(spec.path, spec.split);
  if (spec.kind == "cifar100") return open_cifar100(spec.path, spec.split);
  if (spec.kind == "folder") return std::make_shared<ImageFolderDataset>(spec.path);
  if (spec.kind == "idx") {
    const auto comma = spec.path.find(',');
    require(comma != std::string::npos, "idx data set '{}': expected IMAGES_FILE,LABELS_FILE",
            spec.path);
    return open_idx(spec.path.substr(0, comma), spec.path.substr(comma + 1));
  }
  fail("unknown data set kind '{}' ({})", spec.kind, kForms);
}

fs::path default_data_root() {
  if (const auto dir = env("QIMERA_DATA_DIR"); !dir.empty()) return dir;
  if (const auto cache = env("XDG_CACHE_HOME"); !cache.empty()) return fs::path(cache) / "qimera";
  const auto home = env("HOME");
  require(!home.empty(), "cannot find a data folder: set QIMERA_DATA_DIR (HOME is not set)");
  return fs::path(home) / ".cache" / "qimera";
}

}  // namespace qimera::data
