// Figures through gnuplot (Debian's gnuplot-nox), run as a program on a script: the analyses and the
// report draw with it rather than with hand-made plotting code.
#pragma once

#include <filesystem>
#include <string>

namespace qimera::analysis {

/// Runs `script` (which must not set the terminal or output) with `terminal` (e.g.
/// "svg size 800,500") and writes the figure to `output` atomically. Throws an Error naming gnuplot
/// when it is missing or fails.
void render_with_gnuplot(const std::string& script, const std::string& terminal,
                         const std::filesystem::path& output);

/// `text` as a gnuplot single-quoted string.
std::string gnuplot_string(const std::string& text);

}  // namespace qimera::analysis
