#include "qimera/io/state_dict.h"

#include "qimera/core/error.h"
#include "qimera/io/safetensors.h"
#include "qimera/io/torch_zip.h"

#include <fstream>
#include <string>

namespace qimera::io {
namespace fs = std::filesystem;

namespace {

std::string first_bytes(const fs::path& path, size_t count) {
  std::ifstream in(path, std::ios::binary);
  if (!in.good()) {
    fail("{}: {}", path.string(), fs::exists(path) ? "cannot open it" : "no such file");
  }
  std::string bytes(count, '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(count));
  bytes.resize(static_cast<size_t>(in.gcount()));
  return bytes;
}

}  // namespace

StateDict read_state_dict(const fs::path& path) {
  const std::string magic = first_bytes(path, 4);
  if (magic == "PK\x03\x04") return read_torch_zip(path);
  // PROTO 2 and the LONG1 magic number that the pre-1.6 torch.save format starts with.
  if (magic == "\x80\x02\x8a\x0a") {
    fail(
        "{}: written by torch.save in the legacy format (PyTorch < 1.6 or "
        "_use_new_zipfile_serialization=False); re-save it with a current PyTorch",
        path.string());
  }
  return read_safetensors(path);
}

}  // namespace qimera::io
