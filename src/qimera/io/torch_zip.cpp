#include "qimera/io/torch_zip.h"

#include "qimera/core/error.h"
#include "qimera/io/unpickler.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <caffe2/serialize/inline_container.h>

#include <memory>
#include <string>

namespace qimera::io {
namespace fs = std::filesystem;
using caffe2::serialize::PyTorchStreamReader;

namespace {

std::string record_text(PyTorchStreamReader& reader, const std::string& name) {
  auto [data, size] = reader.getRecord(name);
  return std::string(static_cast<const char*>(data.get()), size);
}

// The record's bytes without a copy: the tensor owns the reader's buffer.
at::Tensor record_bytes(PyTorchStreamReader& reader, const std::string& name,
                        const std::string& source) {
  if (!reader.hasRecord(name)) fail("{}: the archive has no record {}", source, name);
  try {
    auto [data, size] = reader.getRecord(name);
    auto buffer = std::make_shared<at::DataPtr>(std::move(data));
    const auto release = [buffer](void*) {};
    return at::from_blob(buffer->get(), {static_cast<int64_t>(size)}, release,
                         at::TensorOptions().dtype(at::kByte));
  } catch (const c10::Error& e) {
    fail("{}: cannot read record {}: {}", source, name, e.what_without_backtrace());
  }
}

void check_archive(PyTorchStreamReader& reader, const std::string& source) {
  if (reader.hasRecord("constants.pkl")) {
    fail(
        "{}: a TorchScript archive (torch.jit.save), not a state dict; save "
        "model.state_dict() with torch.save instead",
        source);
  }
  if (!reader.hasRecord("data.pkl")) {
    fail("{}: a zip file without data.pkl, not written by torch.save", source);
  }
  // Storages are raw bytes in the writer's byte order; files without the record predate it and
  // were little-endian in practice.
  if (reader.hasRecord("byteorder")) {
    const std::string order = record_text(reader, "byteorder");
    if (order != "little") {
      fail("{}: saved with byte order '{}', only 'little' is supported", source, order);
    }
  }
}

}  // namespace

StateDict read_torch_zip(const fs::path& path) {
  const std::string source = path.string();
  if (!fs::is_regular_file(path)) fail("{}: no such file", source);
  try {
    PyTorchStreamReader reader(source);
    check_archive(reader, source);
    const std::string pickle = record_text(reader, "data.pkl");
    return detail::unpickle_state_dict(
        pickle, [&](const std::string& name) { return record_bytes(reader, name, source); },
        source);
  } catch (const c10::Error& e) {
    fail("{}: not a readable torch.save zip archive: {}", source, e.what_without_backtrace());
  }
}

}  // namespace qimera::io
