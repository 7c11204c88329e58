// Reading zip archives as torch.save writes them (PyTorch >= 1.6): a folder of records, each stored
// or deflated, zip64 where needed. Written for hostile files: every size in the archive is checked
// against the file's real length and against what the caller expects before anything is allocated
// or inflated, records may not overlap (a classic zip bomb), and every record's CRC-32 is verified.
// No LibTorch here, so the reader can be fuzzed on its own.
#pragma once

#include "qimera/core/input_file.h"

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace qimera::io {

struct ZipRecord {
  std::string name;  // without the archive's top folder ("data.pkl", "data/0")
  uint16_t method = 0;  // 0 stored, 8 deflated
  uint32_t crc32 = 0;
  uint64_t compressed_size = 0;
  uint64_t size = 0;  // uncompressed, as the archive declares it
  uint64_t data_offset = 0;  // of the (compressed) bytes in the file
};

class ZipArchive {
 public:
  /// Reads and validates the central directory; errors name the file.
  explicit ZipArchive(const std::filesystem::path& path);

  /// Records are named as PyTorch's reader names them: relative to the folder that the first entry
  /// lives in ("archive/data.pkl" -> "data.pkl"). Entries outside that folder are ignored.
  bool has(const std::string& name) const { return records_.count(name) > 0; }
  /// The record, or an error naming the file and the record.
  const ZipRecord& record(const std::string& name) const;
  std::vector<std::string> names() const;

  /// Reads the record, which must declare exactly `size` bytes (checked before reading or
  /// inflating), into `out`, and verifies its CRC-32.
  void read(const std::string& name, void* out, uint64_t size) const;
  /// The whole record, which must declare at most `max_size` bytes.
  std::string read_string(const std::string& name, uint64_t max_size) const;

  const std::string& source() const { return file_.name(); }

 private:
  void read_directory();
  void add(ZipRecord record, uint64_t header_offset, std::vector<std::pair<uint64_t, uint64_t>>& spans);
  void inflate_into(const ZipRecord& record, void* out) const;
  [[noreturn]] void error(const std::string& message) const;

  InputFile file_;
  std::string prefix_;
  std::map<std::string, ZipRecord> records_;
};

}  // namespace qimera::io
