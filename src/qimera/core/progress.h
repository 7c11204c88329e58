// Progress reporting for long work: a bar with rate, ETA and caller-supplied metrics on a terminal;
// plain periodic lines when stderr is not a terminal (logs, CI).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace qimera {

class ProgressBar {
 public:
  /// `total` steps of work named `label`; at most one redraw per `min_interval`.
  ProgressBar(int64_t total, std::string label,
              std::chrono::milliseconds min_interval = std::chrono::milliseconds(250));
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  /// Marks `done` steps finished (absolute, not a delta) and shows `metrics` after the bar.
  void update(int64_t done, const std::string& metrics = "");
  /// Prints the final state and a newline; called by the destructor if not called before.
  void finish(const std::string& metrics = "");

  /// Seconds since construction.
  double elapsed_seconds() const;

  /// Globally silences all bars (for tests and --quiet).
  static void set_enabled(bool enabled);

 private:
  void draw(bool final_line);

  int64_t total_;
  int64_t done_ = 0;
  std::string label_;
  std::string metrics_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
  std::chrono::milliseconds min_interval_;
  bool tty_;
  bool finished_ = false;
};

/// "1h02m", "3m05s", "12s".
std::string format_duration(double seconds);

}  // namespace qimera
