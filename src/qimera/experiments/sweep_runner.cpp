#include "qimera/experiments/sweep_runner.h"

#include "qimera/core/error.h"
#include "qimera/experiments/run_outcome.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <map>
#include <thread>

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

extern char** environ;

namespace qimera::experiments {
namespace fs = std::filesystem;

RunState run_state(const fs::path& dir) {
  if (fs::exists(dir / "summary.json")) return RunState::Finished;
  if (fs::exists(dir / "checkpoint.pt")) return RunState::Resumable;
  return RunState::Fresh;
}

std::vector<std::string> run_command(const RunnerOptions& options, const SweepRun& run, int threads,
                                     bool resume) {
  std::vector<std::string> argv{options.executable.string(), "quantize"};
  argv.insert(argv.end(), run.args.begin(), run.args.end());
  for (const auto& extra : {std::string("--seed"), std::to_string(run.seed), std::string("--threads"),
                            std::to_string(threads), std::string("--out"), run.dir.string()}) {
    argv.push_back(extra);
  }
  if (resume) argv.push_back("--resume");
  return argv;
}

namespace {

std::string quoted(const std::vector<std::string>& argv) {
  std::string line;
  for (const auto& word : argv) {
    const bool plain = !word.empty() && word.find_first_of(" \t'\"\\$*?;&|<>()") == std::string::npos;
    line += (line.empty() ? "" : " ") + (plain ? word : "'" + word + "'");
  }
  return line;
}

// Holds an exclusive lock on a file for the object's life (flock: released if the process dies).
class SweepLock {
 public:
  explicit SweepLock(const fs::path& path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    require(fd_ >= 0, "cannot create the sweep lock {}: {}", path.string(), std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd_);
      fail("another qimera sweep is running in {} (it holds {}); wait for it or stop it first",
           path.parent_path().string(), path.string());
    }
  }
  ~SweepLock() { ::close(fd_); }
  SweepLock(const SweepLock&) = delete;
  SweepLock& operator=(const SweepLock&) = delete;

 private:
  int fd_ = -1;
};

// Starts `argv` with stdout and stderr appended to `log_path` and OMP_NUM_THREADS set, so that the
// BLAS and OpenMP pools match --threads. Returns the child's pid.
pid_t spawn(const std::vector<std::string>& argv, const fs::path& log_path, int threads) {
  const int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  require(log_fd >= 0, "cannot open the run log {}: {}", log_path.string(), std::strerror(errno));
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    if (std::strncmp(*e, "OMP_NUM_THREADS=", 16) != 0) env.emplace_back(*e);
  }
  env.push_back(fmt::format("OMP_NUM_THREADS={}", threads));
  std::vector<char*> cargv, cenv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (const auto& e : env) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log_fd);
    fail("cannot start a run ({}): {}", argv[0], std::strerror(errno));
  }
  if (pid == 0) {
    // In the child only async-signal-safe calls until exec.
#ifdef __linux__
    // A sweep killed by a signal takes its runs with it, so a restarted sweep never finds a run
    // still writing the folder it resumes.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(126);
#endif
    const int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) ::dup2(null_fd, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    ::execve(cargv[0], cargv.data(), cenv.data());
    const char message[] = "qimera sweep: cannot execute the run's program\n";
    [[maybe_unused]] auto ignored = ::write(2, message, sizeof message - 1);
    ::_exit(127);
  }
  ::close(log_fd);
  return pid;
}

std::string exit_text(int status) {
  if (WIFEXITED(status)) return fmt::format("exit status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return fmt::format("killed by signal {}", WTERMSIG(status));
  return "ended abnormally";
}

}  // namespace

RunnerReport run_sweep(const SweepConfig& config, const RunnerOptions& options,
                       const std::function<void(const std::string&)>& log) {
  require(options.jobs >= 1, "--jobs must be at least 1, got {}", options.jobs);
  require(::access(options.executable.c_str(), X_OK) == 0, "cannot execute {}: {}",
          options.executable.string(), std::strerror(errno));
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int threads =
      options.threads_per_job > 0 ? options.threads_per_job : std::max(1, cores / options.jobs);
  RunnerReport report;
  std::deque<std::pair<SweepRun, bool>> queue;  // run, resume
  for (const auto& run : expand_sweep(config)) {
    const auto state = run_state(run.dir);
    if (state == RunState::Finished) {
      ++report.skipped;
    } else {
      queue.emplace_back(run, state == RunState::Resumable);
    }
  }
  const size_t total = queue.size();
  log(fmt::format("sweep {}: {} runs, {} finished before, {} to run; {} at a time, {} thread{} each",
                  config.out.string(), total + report.skipped, report.skipped, total, options.jobs,
                  threads, threads == 1 ? "" : "s"));
  if (options.dry_run) {
    for (const auto& [run, resume] : queue) log(quoted(run_command(options, run, threads, resume)));
    return report;
  }
  if (queue.empty()) return report;
  fs::create_directories(config.out);
  SweepLock lock(config.out / ".sweep.lock");

  using Clock = std::chrono::steady_clock;
  struct Running {
    SweepRun run;
    Clock::time_point start;
    fs::path log;
  };
  std::map<pid_t, Running> running;
  size_t done = 0;
  double seconds_done = 0;
  while (!queue.empty() || !running.empty()) {
    while (!queue.empty() && static_cast<int>(running.size()) < options.jobs) {
      auto [run, resume] = queue.front();
      queue.pop_front();
      if (!resume && fs::exists(run.dir)) {
        // A run killed before its first checkpoint: nothing in its folder can be continued.
        log(fmt::format("{}: no checkpoint in {}; starting it over", run.dir.filename().string(),
                        run.dir.string()));
        fs::remove_all(run.dir);
      }
      const auto log_path = fs::path(run.dir.string() + ".log");
      const auto argv = run_command(options, run, threads, resume);
      const pid_t pid = spawn(argv, log_path, threads);
      log(fmt::format("[{}/{}] {} {} (log: {})", done + running.size() + 1, total,
                      resume ? "resuming" : "starting", run.dir.filename().string(),
                      log_path.string()));
      running[pid] = {run, Clock::now(), log_path};
    }
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      fail("waiting for the sweep's runs failed: {}", std::strerror(errno));
    }
    const auto it = running.find(pid);
    if (it == running.end()) continue;
    const auto [run, start, log_path] = it->second;
    running.erase(it);
    ++done;
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    // A run counts when it exited cleanly and left a readable summary; anything else is reported
    // and the queue goes on.
    std::optional<RunOutcome> outcome;
    std::string why;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      why = exit_text(status);
    } else {
      try {
        outcome = read_run_outcome(run.dir);
        if (!outcome) why = "no summary.json written";
      } catch (const Error& e) {
        why = e.what();
      }
    }
    const auto name = run.dir.filename().string();
    if (!outcome) {
      report.failures.push_back(fmt::format("{}: {} (log: {})", name, why, log_path.string()));
      log(fmt::format("[{}/{}] {} FAILED: {} after {:.0f} s (log: {})", done, total, name, why,
                      seconds, log_path.string()));
      continue;
    }
    ++report.finished;
    seconds_done += seconds;
    const double eta = seconds_done / report.finished * (total - done) / options.jobs;
    log(fmt::format("[{}/{}] {} finished in {:.0f} s: top-1 {}; about {:.0f} min left", done, total,
                    name, seconds,
                    outcome->final_top1 ? fmt::format("{:.2f}", *outcome->final_top1) : "-",
                    eta / 60));
  }
  return report;
}

}  // namespace qimera::experiments
