#include "qimera/io/torch_zip.h"

#include "qimera/core/error.h"
#include "qimera/io/unpickler.h"
#include "qimera/io/zip_archive.h"

#include <c10/util/Exception.h>

#include <string>

namespace qimera::io {
namespace fs = std::filesystem;

namespace {

// A state dict's pickle holds a few dozen bytes per tensor (ResNet-50's: 27 KB). The bound keeps a
// pickle that claims gigabytes from being inflated, and the interpreter's memory proportional to it.
constexpr uint64_t kMaxPickleBytes = uint64_t{64} << 20;

void check_archive(const ZipArchive& archive) {
  const std::string& source = archive.source();
  if (archive.has("constants.pkl")) {
    fail(
        "{}: a TorchScript archive (torch.jit.save), not a state dict; save "
        "model.state_dict() with torch.save instead",
        source);
  }
  if (!archive.has("data.pkl")) {
    fail("{}: a zip file without data.pkl, not written by torch.save", source);
  }
  // Storages are raw bytes in the writer's byte order; files without the record predate it and
  // were little-endian in practice.
  if (archive.has("byteorder")) {
    const std::string order = archive.read_string("byteorder", 16);
    if (order != "little") {
      fail("{}: saved with byte order '{}', only 'little' is supported", source, order);
    }
  }
}

}  // namespace

StateDict read_torch_zip(const fs::path& path) {
  const ZipArchive archive(path);
  check_archive(archive);
  const std::string pickle = archive.read_string("data.pkl", kMaxPickleBytes);
  const detail::RecordSource records{
      [&](const std::string& name) { return archive.record(name).size; },
      [&](const std::string& name, void* out, uint64_t size) { archive.read(name, out, size); }};
  try {
    return detail::unpickle_state_dict(pickle, records, archive.source());
  } catch (const c10::Error& e) {
    fail("{}: invalid tensor data: {}", archive.source(), e.what_without_backtrace());
  }
}

}  // namespace qimera::io
