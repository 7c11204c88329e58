// Checksums for integrity records: XXH3-128 (xxHash, Debian's libxxhash-dev, used header-only),
// fast enough to check every byte of a checkpoint on every load. A checksum detects damaged or
// edited data; it is not a signature (whoever can write the file can recompute it).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace qimera {

/// Incremental XXH3-128. Example: Checksum c; c.update(header); c.update(data, n); c.hex();
class Checksum {
 public:
  Checksum();
  ~Checksum();
  Checksum(const Checksum&) = delete;
  Checksum& operator=(const Checksum&) = delete;

  Checksum& update(const void* data, size_t size);
  Checksum& update(std::string_view bytes) { return update(bytes.data(), bytes.size()); }
  /// 32 lower-case hex digits of what was fed so far.
  std::string hex() const;

  /// The name stored next to the digests in integrity records.
  static constexpr const char* kAlgorithm = "xxh3-128";

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// XXH3-128 of `bytes` as 32 hex digits.
std::string checksum_hex(std::string_view bytes);

}  // namespace qimera
