// Helpers shared by the tests: fixture paths, temporary folders, formula-filled tensors.
#pragma once

#include <ATen/core/Tensor.h>
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace torch::nn {
class Module;
}

namespace qimera::testing {

/// tests/fixtures/<name>
std::filesystem::path fixture(const std::string& name);

/// tests/fixtures/parity.json, parsed once.
const nlohmann::json& parity();

/// A fresh empty folder under the system temp dir, removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

/// Expects two state dicts (io::StateDict) to hold the same names, dtypes, shapes and values, in
/// the same order; a failure names the entry.
void expect_same_state(const std::vector<std::pair<std::string, at::Tensor>>& actual,
                       const std::vector<std::pair<std::string, at::Tensor>>& expected);

/// Writes raw bytes to a file.
void write_bytes(const std::filesystem::path& path, const std::string& bytes);

/// The message of the qimera::Error that `action` throws; a test failure, and "no error", if it
/// throws none.
std::string error_of(const std::function<void()>& action);

/// `v` as four big-endian bytes, as IDX and PNG headers store sizes.
std::string be32(uint32_t v);

/// This process's peak resident set size so far, in KiB.
long peak_rss_kb();

/// Float32 tensor of `shape` with x[j] = amplitude * sin(phase + step * j), row-major.
at::Tensor sine_tensor(at::IntArrayRef shape, double phase = 0.3, double step = 0.007,
                       double amplitude = 1.0);

/// A JSON array (nested lists) as a float32 tensor.
at::Tensor json_tensor(const nlohmann::json& nested);

/// One line of tests/fixtures/pytorchcv-keys/NAME.txt: state-dict key, dtype, shape.
struct KeyEntry {
  std::string name, dtype;
  std::vector<int64_t> shape;
};
std::vector<KeyEntry> read_pytorchcv_keys(const std::string& model);

/// Fills every floating-point parameter and buffer of `module` by the parity fixture's formula
/// (tests/fixtures/README.md), walking the entries in pytorchcv's state_dict order `keys`.
void fill_by_formula(torch::nn::Module& module, const std::vector<KeyEntry>& keys);

}  // namespace qimera::testing
