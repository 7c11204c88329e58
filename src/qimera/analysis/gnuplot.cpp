#include "qimera/analysis/gnuplot.h"

#include "qimera/core/atomic_file.h"
#include "qimera/core/error.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <spawn.h>
#include <sys/wait.h>

extern char** environ;

namespace qimera::analysis {
namespace fs = std::filesystem;

std::string gnuplot_string(const std::string& text) {
  std::string quoted = "'";
  for (const char c : text) quoted += c == '\'' ? std::string("''") : std::string(1, c);
  return quoted + "'";
}

namespace {

void run_gnuplot(const fs::path& script) {
  const std::string program = "gnuplot", path = script.string();
  char* argv[] = {const_cast<char*>(program.c_str()), const_cast<char*>(path.c_str()), nullptr};
  pid_t pid = 0;
  const int error = ::posix_spawnp(&pid, argv[0], nullptr, nullptr, argv, environ);
  require(error == 0, "cannot run gnuplot ({}): install it (Debian: apt install gnuplot-nox)",
          std::strerror(error));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    require(errno == EINTR, "waiting for gnuplot failed: {}", std::strerror(errno));
  }
  require(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "gnuplot failed on {} (exit status {}); install gnuplot-nox if 'gnuplot' is missing", path,
          WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

}  // namespace

void render_with_gnuplot(const std::string& script, const std::string& terminal,
                         const fs::path& output) {
  write_atomically(output, [&](const fs::path& tmp) {
    const fs::path script_path = tmp.string() + ".gp";
    write_file_atomically(script_path, fmt::format("set terminal {}\nset output {}\n"
                                                   // Names such as g_bns stay literal, not subscripts.
                                                   "set termoption noenhanced\n{}", terminal,
                                                   gnuplot_string(tmp.string()), script));
    try {
      run_gnuplot(script_path);
    } catch (...) {
      fs::remove(script_path);
      throw;
    }
    fs::remove(script_path);
  });
}

}  // namespace qimera::analysis
