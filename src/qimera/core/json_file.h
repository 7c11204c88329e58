// JSON files: reading with errors that name the file, atomic writing, JSON-lines appending.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <filesystem>

namespace qimera {

/// Parses a JSON file (a regular file of at most 1 GiB, nested at most kMaxJsonDepth levels); a
/// syntax error names the file and the byte offset.
nlohmann::json read_json(const std::filesystem::path& path);

/// Writes `value` pretty-printed, atomically.
void write_json(const std::filesystem::path& path, const nlohmann::json& value);

/// Appends `value` as one line (JSON lines), creating the file if needed. The line is written in one
/// write(2) call, so a kill leaves whole lines; a symbolic link or anything but a regular file at
/// `path` is refused rather than written through.
void append_json_line(const std::filesystem::path& path, const nlohmann::json& value);

}  // namespace qimera
