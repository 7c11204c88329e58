// A pickle interpreter for the subset of pickle that torch.save writes for state dicts. Python's
// own unpickler can call any importable function, so this one knows a fixed list of classes and
// treats every other GLOBAL as an error: reading a checkpoint never runs code. Separate from the
// zip container so that tests can feed it hand-built opcode streams.
#pragma once

#include "qimera/io/state_dict.h"

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace qimera::io::detail {

/// Where a pickle's storages come from: the records of a torch.save archive ("data/0", ...).
struct RecordSource {
  /// The record's size in bytes as the archive declares it; qimera::Error if it is missing. Asked
  /// first, so that a record whose size disagrees with its storage is refused before any
  /// allocation or decompression.
  std::function<uint64_t(const std::string& record)> size;
  /// Fills `out` with the record's `size` bytes (the size `size()` returned).
  std::function<void(const std::string& record, void* out, uint64_t size)> read;
};

/// Runs the pickle program `pickle` (the "data.pkl" of a torch.save archive) and returns the state
/// dict it builds. Tensor storages are read from `records` ("data/<key>"), once per key. A top-level
/// checkpoint dict is unwrapped to its "state_dict" or "model" entry. Every error is a qimera::Error
/// that starts with `source` (the file name).
StateDict unpickle_state_dict(std::string_view pickle, const RecordSource& records,
                              const std::string& source);

}  // namespace qimera::io::detail
