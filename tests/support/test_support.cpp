#include "support/test_support.h"

#include "qimera/core/error.h"
#include "qimera/core/json_file.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/nn/module.h>

#include <cmath>
#include <fstream>
#include <map>
#include <atomic>
#include <chrono>
#include <sys/resource.h>
#include <unistd.h>
#include <sstream>

namespace qimera::testing {
namespace fs = std::filesystem;

fs::path fixture(const std::string& name) { return fs::path(QIMERA_FIXTURES_DIR) / name; }

std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no qimera::Error";
  return "no error";
}

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

long peak_rss_kb() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

void expect_same_state(const std::vector<std::pair<std::string, at::Tensor>>& actual,
                       const std::vector<std::pair<std::string, at::Tensor>>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i) {
    const auto& [name, tensor] = actual[i];
    EXPECT_EQ(name, expected[i].first);
    EXPECT_EQ(tensor.scalar_type(), expected[i].second.scalar_type()) << name;
    EXPECT_EQ(tensor.sizes(), expected[i].second.sizes()) << name;
    EXPECT_TRUE(at::equal(tensor, expected[i].second)) << name;
  }
}

const nlohmann::json& parity() {
  static const nlohmann::json value = read_json(fixture("parity.json"));
  return value;
}

TempDir::TempDir() {
  // Unique per process, per object and per run, without std::random_device.
  static std::atomic<int> counter{0};
  const auto ticks = std::chrono::steady_clock::now().time_since_epoch().count();
  path_ = fs::temp_directory_path() / ("qimera-test-" + std::to_string(::getpid()) + "-" +
                                       std::to_string(counter++) + "-" + std::to_string(ticks));
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

std::vector<KeyEntry> read_pytorchcv_keys(const std::string& model) {
  std::ifstream in(fixture("pytorchcv-keys/" + model + ".txt"));
  std::vector<KeyEntry> keys;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    KeyEntry e;
    std::string shape;
    std::getline(fields, e.name, '\t');
    std::getline(fields, e.dtype, '\t');
    std::getline(fields, shape);
    for (char& c : shape) {
      if (c == '[' || c == ']' || c == ',') c = ' ';
    }
    std::istringstream dims(shape);
    for (int64_t d; dims >> d;) e.shape.push_back(d);
    keys.push_back(e);
  }
  return keys;
}

namespace {
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace

void fill_by_formula(torch::nn::Module& module, const std::vector<KeyEntry>& keys) {
  at::NoGradGuard no_grad;
  std::map<std::string, at::Tensor> state;
  for (const auto& p : module.named_parameters()) state[p.key()] = p.value();
  for (const auto& b : module.named_buffers()) state[b.key()] = b.value();
  for (size_t k = 0; k < keys.size(); ++k) {
    auto& t = state.at(keys[k].name);
    if (!at::isFloatingType(t.scalar_type())) continue;
    const auto j = at::arange(t.numel(), at::kDouble);
    const auto s = at::sin(1.0 + 0.37 * static_cast<double>(k) + 12.9898 * j);
    const auto& name = keys[k].name;
    at::Tensor v;
    if (ends_with(name, "running_var")) {
      v = 1 + 0.25 * (s + 1);
    } else if (ends_with(name, "running_mean")) {
      v = 0.1 * s;
    } else if (t.dim() == 1 && ends_with(name, ".weight")) {
      v = 1 + 0.1 * s;
    } else if (ends_with(name, ".bias")) {
      v = 0.1 * s;
    } else {
      const double fan_in = static_cast<double>(t.numel() / t.size(0));
      v = std::sqrt(3.0 / fan_in) * s;
    }
    t.copy_(v.to(at::kFloat).reshape(t.sizes()));
  }
}

}  // namespace qimera::testing
