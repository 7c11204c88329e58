// qimera: the command-line front end. Thin: it parses flags into the library's option structs, calls
// the library and turns errors into messages and exit codes.
#include "commands.h"
#include "common.h"
#include "qimera/core/error.h"
#include "qimera/core/runtime.h"

#include <CLI/CLI.hpp>
#include <csignal>
#include <c10/util/Exception.h>
#include <fmt/format.h>

int main(int argc, char** argv) {
  // Past a file size limit (ulimit -f) a write then fails with EFBIG and the run ends with a message
  // naming the file, instead of the process being killed by SIGXFSZ with a half-written file.
  std::signal(SIGXFSZ, SIG_IGN);
  qimera::tune_allocator();
  qimera::cli::set_command_line(argc, argv);
  CLI::App app{
      "qimera: quantize a trained image classifier to low bit widths without its training data "
      "(Qimera, GDFQ and post-training baselines).\nRun 'qimera COMMAND --help' for a command's "
      "flags."};
  app.require_subcommand(1);
  qimera::cli::add_data_command(app);
  qimera::cli::add_train_command(app);
  qimera::cli::add_eval_command(app);
  qimera::cli::add_quantize_command(app);
  qimera::cli::add_export_command(app);
  qimera::cli::add_analyze_command(app);
  qimera::cli::add_confusing_command(app);
  qimera::cli::add_report_command(app);
  qimera::cli::add_check_command(app);
  qimera::cli::add_sweep_command(app);
  qimera::cli::add_info_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const qimera::Error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  } catch (const c10::Error& e) {
    fmt::print(stderr, "error (LibTorch): {}\n", e.what_without_backtrace());
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 2;
  }
  return 0;
}
