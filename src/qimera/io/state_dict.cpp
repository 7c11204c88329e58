#include "qimera/io/state_dict.h"

#include "qimera/core/error.h"
#include "qimera/core/input_file.h"
#include "qimera/io/safetensors.h"
#include "qimera/io/torch_zip.h"

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <string>

namespace qimera::io {
namespace fs = std::filesystem;

namespace {

std::string first_bytes(const fs::path& path, size_t count) {
  const InputFile file(path);  // refuses FIFOs and devices before anyone waits on them
  return file.read(0, static_cast<size_t>(std::min<uint64_t>(count, file.size())));
}

// "holds 3 NaN and 1 infinite values (the first at element 17 of 432)", or "" when all are finite.
std::string nonfinite_summary(const at::Tensor& tensor) {
  if (!at::isFloatingType(tensor.scalar_type()) || tensor.numel() == 0) return "";
  const at::Tensor bad = at::isfinite(tensor).logical_not_().flatten();
  const int64_t count = bad.sum().item<int64_t>();
  if (count == 0) return "";
  const int64_t nans = at::isnan(tensor).sum().item<int64_t>();
  const int64_t first = bad.nonzero()[0][0].item<int64_t>();
  return fmt::format("holds {} NaN and {} infinite values (the first at element {} of {})", nans,
                     count - nans, first, tensor.numel());
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

void check_finite(const StateDict& state, const std::string& source, NonFinite policy) {
  std::string first;
  size_t count = 0;
  for (const auto& [name, tensor] : state) {
    const std::string summary = nonfinite_summary(tensor);
    if (summary.empty()) continue;
    if (count++ == 0) first = fmt::format("tensor '{}' {}", name, summary);
  }
  if (count == 0) return;
  const std::string others = count > 1 ? fmt::format(" (and {} more tensors)", count - 1) : "";
  if (policy == NonFinite::Warn) {
    spdlog::warn("{}: {}{}; loading it anyway as asked", source, first, others);
    return;
  }
  fail("{}: {}{}: a model with them computes garbage. If that is intended, --allow-nonfinite "
       "loads it with a warning", source, first, others);
}

}  // namespace qimera::io
