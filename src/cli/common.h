// Flags every command shares, and the small helpers the commands have in common.
#pragma once

#include "qimera/data/dataset.h"
#include "qimera/data/preprocess.h"
#include "qimera/io/state_dict.h"

#include <CLI/CLI.hpp>
#include <c10/core/Device.h>

#include <filesystem>
#include <memory>
#include <string>

namespace qimera::cli {

struct CommonOptions {
  std::string device = "auto";
  int threads = 0;
  uint64_t seed = 0;
  bool quiet = false;
  bool verbose = false;
  std::string data_root;
  int workers = 2;
  bool allow_nonfinite = false;

  /// What loading a model does with NaN / infinite weights (--allow-nonfinite).
  io::NonFinite nonfinite() const {
    return allow_nonfinite ? io::NonFinite::Warn : io::NonFinite::Refuse;
  }
};

/// Seeds as run folders and sweep files store them (JSON integers, 0 .. 2^63 - 1): CLI11 would
/// otherwise read "-1" into a uint64_t as 2^64 - 1, a seed no run record can hold.
CLI::Validator seed_range();

/// Adds --device, --threads, --seed, --data-root, --workers, --allow-nonfinite, --quiet, --verbose
/// to `command`.
void add_common_options(CLI::App& command, CommonOptions& options);

/// Applies threads, logging and the seed; returns the device to run on.
c10::Device apply_common_options(const CommonOptions& options);

std::filesystem::path data_root(const CommonOptions& options);

/// Opens a data set from its command-line spec ("fashion-mnist:test", ...).
std::shared_ptr<const data::Dataset> open_data(const std::string& spec, const CommonOptions& options);

/// The default preprocessing preset for a data-set spec ("fashion-mnist:test" -> fashion-mnist).
std::string default_preprocess_for(const std::string& spec);

/// Refuses, before any work is done, an output path that cannot become a file: a folder, or a
/// path ending in '/'. `flag` names the option ("--json").
void check_output_file(const std::string& path, const char* flag);

/// The command line as typed, for provenance records.
const std::string& command_line();
void set_command_line(int argc, char** argv);

}  // namespace qimera::cli
