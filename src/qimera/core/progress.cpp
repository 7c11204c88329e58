#include "qimera/core/progress.h"

#include <fmt/format.h>

#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>

namespace qimera {
namespace {
std::atomic<bool> g_enabled{true};
// Without a terminal, print a line about every 10% of the work or every 30 s, whichever comes first.
constexpr double kPlainLineSeconds = 30.0;
}  // namespace

ProgressBar::ProgressBar(int64_t total, std::string label, std::chrono::milliseconds min_interval)
    : total_(std::max<int64_t>(total, 1)),
      label_(std::move(label)),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_),
      min_interval_(min_interval),
      tty_(::isatty(STDERR_FILENO) != 0) {}

ProgressBar::~ProgressBar() {
  if (!finished_) finish(metrics_);
}

void ProgressBar::set_enabled(bool enabled) { g_enabled = enabled; }

double ProgressBar::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void ProgressBar::update(int64_t done, const std::string& metrics) {
  const int64_t previous = done_;
  done_ = std::min(done, total_);
  metrics_ = metrics;
  const auto now = std::chrono::steady_clock::now();
  const auto since = now - last_draw_;
  bool due = tty_ ? since >= min_interval_ : false;
  if (!tty_) {
    const int64_t tenth = std::max<int64_t>(total_ / 10, 1);
    due = (done_ / tenth != previous / tenth) ||
          std::chrono::duration<double>(since).count() >= kPlainLineSeconds;
  }
  if (due) {
    last_draw_ = now;
    draw(false);
  }
}

void ProgressBar::finish(const std::string& metrics) {
  if (finished_) return;
  finished_ = true;
  metrics_ = metrics;
  draw(true);
}

void ProgressBar::draw(bool final_line) {
  if (!g_enabled) return;
  const double elapsed = elapsed_seconds();
  const double fraction = static_cast<double>(done_) / static_cast<double>(total_);
  const double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0.0;
  const double eta = rate > 0 ? static_cast<double>(total_ - done_) / rate : 0.0;
  std::string line;
  if (tty_) {
    constexpr int kWidth = 24;
    const int filled = static_cast<int>(std::lround(fraction * kWidth));
    line = fmt::format("\r{} [{}{}] {}/{} {} ETA {} {}\x1b[K", label_, std::string(filled, '#'),
                       std::string(kWidth - filled, '.'), done_, total_,
                       format_duration(elapsed), format_duration(eta), metrics_);
    if (final_line) line += '\n';
  } else {
    line = fmt::format("{} {}/{} ({:.0f}%) {} ETA {} {}\n", label_, done_, total_, 100 * fraction,
                       format_duration(elapsed), format_duration(eta), metrics_);
  }
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<int64_t>(std::lround(seconds));
  if (s >= 3600) return fmt::format("{}h{:02d}m", s / 3600, (s % 3600) / 60);
  if (s >= 60) return fmt::format("{}m{:02d}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

}  // namespace qimera
