// Atomic writes: results and checkpoints either appear complete or not at all, even if the process is
// killed mid-write or the disk fills up (write a temporary file in the same folder, flush it to disk,
// then rename). Every failure is a qimera::Error that names the target and the system's reason, and
// leaves the previous file and no temporary file behind.
#pragma once

#include "qimera/core/input_file.h"  // read_file, which used to live here

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

namespace qimera {

/// A new file written with write(2), each failure (full disk, quota, file size limit, I/O error)
/// checked and reported under `display` (the name the user knows: the target, not the temporary).
/// Never throws from its destructor.
class OutputFile {
 public:
  /// Creates `path`, which must not exist (O_EXCL: a symbolic link planted there is not followed).
  OutputFile(const std::filesystem::path& path, std::string display);
  ~OutputFile();
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  void write(const void* data, size_t count);
  void write(std::string_view bytes) { write(bytes.data(), bytes.size()); }
  /// Flushes to disk and closes; a full disk often shows only here.
  void finish();

 private:
  int fd_ = -1;
  std::string display_;
};

/// Calls `write(out)` to fill a temporary file next to `target`, then renames it over `target`.
/// Creates the parent folder if needed. Example:
///   write_file_atomically(path, [&](OutputFile& out) { out.write(header); out.write(data); });
void write_file_atomically(const std::filesystem::path& target,
                           const std::function<void(OutputFile& out)>& write);

/// Writes `bytes` to `target` atomically.
void write_file_atomically(const std::filesystem::path& target, std::string_view bytes);

/// For writers that insist on a path: calls `write(tmp)` to produce the file at a temporary path
/// next to `target`, checks that it is there, flushes it to disk and renames it over `target`. Any
/// exception from `write` removes the temporary file and comes back as a qimera::Error.
/// Example: write_atomically(out, [&](const auto& tmp) { torch::save(model, tmp.string()); });
void write_atomically(const std::filesystem::path& target,
                      const std::function<void(const std::filesystem::path& tmp)>& write);

}  // namespace qimera
