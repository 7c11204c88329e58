// Reading files whose content and size nobody vouches for. A reader may trust size(): only regular
// files are opened (a FIFO would block forever, /dev/zero never ends, a folder reads as garbage),
// and every read checks that the bytes asked for exist, so a length field in a file can be compared
// with the file's real length before anything is allocated for it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

namespace qimera {

/// The largest file read_file() reads unless told otherwise: larger than any data set file this
/// project reads whole (CIFAR-100's train.bin is 150 MB), small enough to fail before swapping.
inline constexpr uint64_t kMaxReadBytes = uint64_t{4} << 30;

/// A regular file opened for reading; errors name the file.
/// Example: InputFile in(path); auto header = in.read(0, 16);
class InputFile {
 public:
  explicit InputFile(const std::filesystem::path& path);
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  /// The file's length when it was opened.
  uint64_t size() const { return size_; }
  /// The path, for messages.
  const std::string& name() const { return name_; }

  /// Reads exactly `count` bytes at `offset`; a file shorter than that is an error ("truncated").
  void read_into(uint64_t offset, void* out, size_t count) const;
  std::string read(uint64_t offset, size_t count) const;

 private:
  int fd_ = -1;
  uint64_t size_ = 0;
  std::string name_;
};

/// Reads a whole regular file of at most `max_bytes`; the error names the file.
std::string read_file(const std::filesystem::path& path, uint64_t max_bytes = kMaxReadBytes);

/// "a FIFO", "a folder", "a character device", ... for messages; "missing" if nothing is there.
std::string file_kind(const std::filesystem::path& path);

}  // namespace qimera
