// qimera: the command-line front end. Thin: it parses flags into the library's option structs, calls
// the library and turns errors into messages and exit codes.
#include "qimera/core/error.h"
#include "qimera/core/runtime.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

int main(int argc, char** argv) {
  qimera::tune_allocator();
  CLI::App app{"qimera: data-free quantization of image classifiers (Qimera, GDFQ and baselines)"};
  app.require_subcommand(1);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const qimera::Error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  return 0;
}
