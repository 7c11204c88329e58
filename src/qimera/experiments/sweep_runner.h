// Runs a sweep's grid as a queue of ordinary `qimera quantize` processes, several at a time with
// the cores split between them. Resumable: a finished run (summary.json) is skipped, a run with a
// checkpoint continues with --resume, a run killed before its first checkpoint starts over.
#pragma once

#include "qimera/experiments/sweep_config.h"

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace qimera::experiments {

struct RunnerOptions {
  std::filesystem::path executable;  // the qimera binary (or a stand-in, in tests)
  int jobs = 1;                      // processes at a time
  int threads_per_job = 0;           // 0: the cores divided by jobs, at least 1
  bool dry_run = false;              // print the commands, run nothing
};

struct RunnerReport {
  int skipped = 0;   // finished before this sweep started
  int finished = 0;  // finished now
  std::vector<std::string> failures;  // "gdfq-2: exit status 1 (log: ...)"
};

/// What a run needs now, from its folder alone.
enum class RunState { Finished, Resumable, Fresh };
RunState run_state(const std::filesystem::path& dir);

/// The full command line of one run: executable, "quantize", its flags, then the flags the sweep
/// owns (--seed, --threads, --out and --resume when resuming).
std::vector<std::string> run_command(const RunnerOptions& options, const SweepRun& run,
                                     int threads, bool resume);

/// Runs every unfinished run of the grid; `log` receives one line per event (start, end, failure).
/// Each run's output goes to <out>/<run>.log (appended). Holds <out>/.sweep.lock so that two
/// sweeps never write one run folder. Throws qimera::Error on a bad executable or a held lock; a
/// failing run is reported, not thrown, and the others go on.
RunnerReport run_sweep(const SweepConfig& config, const RunnerOptions& options,
                       const std::function<void(const std::string&)>& log);

}  // namespace qimera::experiments
