// A pickle interpreter for the subset of pickle that torch.save writes for state dicts. Python's
// own unpickler can call any importable function, so this one knows a fixed list of classes and
// treats every other GLOBAL as an error: reading a checkpoint never runs code. Separate from the
// zip container so that tests can feed it hand-built opcode streams.
#pragma once

#include "qimera/io/state_dict.h"

#include <ATen/core/Tensor.h>

#include <functional>
#include <string>
#include <string_view>

namespace qimera::io::detail {

/// Returns the bytes of an archive record (e.g. "data/0") as a 1-D uint8 CPU tensor, or throws
/// qimera::Error when the record is missing or unreadable.
using RecordLoader = std::function<at::Tensor(const std::string& record)>;

/// Runs the pickle program `pickle` (the "data.pkl" of a torch.save archive) and returns the state
/// dict it builds. Tensor storages are fetched with `load_record("data/<key>")`, once per key.
/// A top-level checkpoint dict is unwrapped to its "state_dict" or "model" entry. Every error is a
/// qimera::Error that starts with `source` (the file name).
StateDict unpickle_state_dict(std::string_view pickle, const RecordLoader& load_record,
                              const std::string& source);

}  // namespace qimera::io::detail
