#include "qimera/core/checksum.h"

#include "qimera/core/error.h"

#define XXH_INLINE_ALL  // header-only: no library to link, and the vendored build needs only the header
#include <xxhash.h>

#include <fmt/format.h>

namespace qimera {

struct Checksum::State {
  XXH3_state_t xxh;
};

Checksum::Checksum() : state_(std::make_unique<State>()) {
  require(XXH3_128bits_reset(&state_->xxh) == XXH_OK, "cannot initialise xxHash");
}

Checksum::~Checksum() = default;

Checksum& Checksum::update(const void* data, size_t size) {
  if (size > 0) XXH3_128bits_update(&state_->xxh, data, size);
  return *this;
}

std::string Checksum::hex() const {
  const XXH128_hash_t digest = XXH3_128bits_digest(&state_->xxh);
  return fmt::format("{:016x}{:016x}", digest.high64, digest.low64);
}

std::string checksum_hex(std::string_view bytes) { return Checksum().update(bytes).hex(); }

}  // namespace qimera
