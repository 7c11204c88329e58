// `qimera report`: one self-contained HTML page (no network needed to open it) for one or several
// run folders: a comparison table and accuracy curves, then per run its command and options,
// result rows, per-epoch losses, the sample grid, the PCA plot and the boundary metrics (those
// three when `qimera analyze` has been run), and export sizes. Figures are gnuplot's, embedded as
// data: URIs.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace qimera::analysis {

/// Writes the page to `out` atomically; errors name the run folder whose files are unreadable.
void write_report(const std::vector<std::filesystem::path>& runs, const std::filesystem::path& out);

std::string html_escape(const std::string& text);
std::string base64(const std::string& bytes);

}  // namespace qimera::analysis
