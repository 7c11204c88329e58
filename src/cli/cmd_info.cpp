// qimera info: what this build can do.
#include "commands.h"
#include "common.h"
#include "qimera/core/runtime.h"
#include "qimera/core/table.h"
#include "qimera/data/image_codec.h"
#include "qimera/data/preprocess.h"
#include "qimera/models/zoo.h"

#include <fmt/format.h>

namespace qimera::cli {

void add_info_command(CLI::App& app) {
  static CommonOptions o;
  auto* cmd = app.add_subcommand("info", "Show the runtime (LibTorch, device, threads), the model "
                                         "presets and the preprocessing presets");
  add_common_options(*cmd, o);
  cmd->callback([] {
    const auto device = apply_common_options(o);
    fmt::print("{}\n", describe_runtime(device));
    fmt::print("data root: {}\n", data_root(o).string());
    fmt::print("image decoding: PNG {}, JPEG {}\n", data::png_supported() ? "yes" : "no",
               data::jpeg_supported() ? "yes" : "no");
    Table presets({"model preset", "architecture"});
    models::for_each_preset([&](const std::string& name, const models::ModelSpec& spec) {
      presets.add_row({name, spec.describe()});
    });
    fmt::print("{}", presets.render());
    fmt::print("preprocessing presets: {}\n", fmt::join(data::preprocess_preset_names(), ", "));
  });
}

}  // namespace qimera::cli
