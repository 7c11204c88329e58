#include "support/test_support.h"

#include "qimera/core/json_file.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <random>

namespace qimera::testing {
namespace fs = std::filesystem;

fs::path fixture(const std::string& name) { return fs::path(QIMERA_FIXTURES_DIR) / name; }

const nlohmann::json& parity() {
  static const nlohmann::json value = read_json(fixture("parity.json"));
  return value;
}

TempDir::TempDir() {
  std::random_device rd;
  path_ = fs::temp_directory_path() / ("qimera-test-" + std::to_string(rd()) + std::to_string(rd()));
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

at::Tensor sine_tensor(at::IntArrayRef shape, double phase, double step, double amplitude) {
  auto j = at::arange(c10::multiply_integers(shape), at::kDouble);
  return (amplitude * at::sin(phase + step * j)).to(at::kFloat).reshape(shape);
}

at::Tensor json_tensor(const nlohmann::json& nested) {
  std::vector<int64_t> shape;
  const nlohmann::json* level = &nested;
  while (level->is_array()) {
    shape.push_back(static_cast<int64_t>(level->size()));
    if (level->empty()) break;
    level = &(*level)[0];
  }
  std::vector<float> flat;
  std::function<void(const nlohmann::json&)> walk = [&](const nlohmann::json& node) {
    if (node.is_array()) {
      for (const auto& child : node) walk(child);
    } else {
      flat.push_back(node.get<float>());
    }
  };
  walk(nested);
  return at::tensor(flat, at::kFloat).reshape(shape);
}

}  // namespace qimera::testing
