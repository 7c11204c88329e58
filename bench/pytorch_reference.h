// The PyTorch side of bench_train_step: bench/reference_step.py run as a child process that stays
// up, so its iterations can be timed in rounds interleaved with ours (the machine's speed drifts).
#pragma once

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <sys/types.h>

namespace qimera::bench {

struct ReferenceCommand {
  std::string python = "/usr/bin/python3";  // Debian's interpreter, the one with python3-torch
  std::string script;
  int threads = 1;
  int64_t batch = 64;
};

class PytorchReference {
 public:
  /// Starts the script in --serve mode; throws with the script's own words when it cannot start
  /// (no python3-torch, a missing script).
  explicit PytorchReference(const ReferenceCommand& command);
  ~PytorchReference();
  PytorchReference(const PytorchReference&) = delete;
  PytorchReference& operator=(const PytorchReference&) = delete;

  /// Milliseconds per iteration over `iterations` iterations, timed inside Python.
  double ms_per_iteration(int iterations);
  const std::string& version() const { return version_; }

 private:
  std::string read_line();
  pid_t pid_ = -1;
  std::FILE* to_child_ = nullptr;
  std::FILE* from_child_ = nullptr;
  std::string version_;
};

/// Multiply-adds of one iteration (generator, teacher, student), counted by the script's hooks on
/// the same layer sizes; throws, naming the command, when the script cannot run.
struct MultiplyAdds {
  double generator = 0, teacher = 0, student = 0;
  double total() const { return generator + teacher + student; }
};
MultiplyAdds count_multiply_adds(const ReferenceCommand& command);

/// The float32 GFLOP/s `threads` cores can reach (cores x GHz x FLOP per cycle, from /proc/cpuinfo)
/// and how it was worked out; nullopt when the CPU does not say.
struct Peak {
  double gflops = 0;
  std::string how;
};
std::optional<Peak> float32_peak(int threads);

}  // namespace qimera::bench
