// Atomic writes: results and checkpoints either appear complete or not at all, even if the process is
// killed mid-write (write a temporary file in the same folder, flush it to disk, then rename).
#pragma once

#include <filesystem>
#include <functional>
#include <string_view>

namespace qimera {

/// Calls `write(tmp)` to produce the file at a temporary path next to `target`, then renames it over
/// `target`. Creates the parent folder if needed. Removes the temporary file if `write` throws.
/// Example: write_atomically(out, [&](const auto& tmp) { torch::save(model, tmp.string()); });
void write_atomically(const std::filesystem::path& target,
                      const std::function<void(const std::filesystem::path& tmp)>& write);

/// Writes `bytes` to `target` atomically.
void write_file_atomically(const std::filesystem::path& target, std::string_view bytes);

/// Reads a whole file; the error names the file.
std::string read_file(const std::filesystem::path& path);

}  // namespace qimera
