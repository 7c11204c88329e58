// Each command registers itself on the application; its callback runs when it was chosen.
#pragma once

#include <CLI/CLI.hpp>

namespace qimera::cli {

void add_data_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_quantize_command(CLI::App& app);
void add_export_command(CLI::App& app);
void add_info_command(CLI::App& app);
void add_sweep_command(CLI::App& app);
void add_analyze_command(CLI::App& app);
void add_confusing_command(CLI::App& app);
void add_report_command(CLI::App& app);
void add_check_command(CLI::App& app);

}  // namespace qimera::cli
