// A sweep: a grid of ordinary `qimera quantize` runs (methods x settings x seeds) in one output
// folder, described by a small JSON file. Example (shortened from sweeps/fmnist-4w4a.json):
//   {"out": "runs/sweeps/fmnist-4w4a", "seeds": [1, 2, 3],
//    "common": ["--model", "assets/fmnist-resnet20/model.json", "--test-data", "fashion-mnist:test"],
//    "settings": [{"name": "4w4a", "args": ["--wbits", "4", "--abits", "4"]}],
//    "methods": [{"name": "gdfq", "args": ["--method", "gdfq", "--preset", "fmnist-short"]}]}
// Run folders are named METHOD[-SETTING]-SEED, so a table can be rebuilt from the folders alone.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace qimera::experiments {

/// A named group of `quantize` flags: one method, or one setting shared by every method.
struct SweepEntry {
  std::string name;
  std::vector<std::string> args;
};

struct SweepConfig {
  std::string title;  // shown above the table; defaults to the output folder's name
  std::filesystem::path out;
  std::vector<uint64_t> seeds;
  std::vector<std::string> common;     // flags every run gets
  std::vector<SweepEntry> settings;    // empty: one setting, unnamed
  std::vector<SweepEntry> methods;
};

/// One run of the grid: its folder and its `quantize` flags, without the ones the sweep owns.
struct SweepRun {
  std::string method, setting;  // setting is empty when the sweep has none
  uint64_t seed = 0;
  std::filesystem::path dir;
  std::vector<std::string> args;  // common, then setting, then method flags
};

/// Flags the sweep passes itself (per run or per process); a config that gives them is refused.
const std::vector<std::string>& sweep_owned_flags();

/// Reads and checks a sweep file; every error names the file and the field.
SweepConfig read_sweep_config(const std::filesystem::path& path);
SweepConfig parse_sweep_config(const nlohmann::json& j, const std::string& source);

/// The sweep restricted to the named methods, in the file's order; an unknown name is an Error that
/// lists the file's methods.
SweepConfig only_methods(const SweepConfig& config, const std::vector<std::string>& names);

/// The same for settings (e.g. one bit width of a file that lists several).
SweepConfig only_settings(const SweepConfig& config, const std::vector<std::string>& names);

/// The same for seeds (e.g. seed 1 of every method first, as a preview); a seed the file does not
/// list is an Error.
SweepConfig only_seeds(const SweepConfig& config, const std::vector<uint64_t>& seeds);

/// Every run, seed-major (all methods of seed 1, then seed 2, ...) so that a sweep stopped half-way
/// leaves complete rows for the first seeds; within a seed, setting-major in the file's order.
std::vector<SweepRun> expand_sweep(const SweepConfig& config);

}  // namespace qimera::experiments
