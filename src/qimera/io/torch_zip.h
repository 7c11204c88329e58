// PyTorch's torch.save zip format (the default since PyTorch 1.6) for state dicts: a zip archive
// with the pickled object in "data.pkl" and each storage's bytes in "data/<key>".
#pragma once

#include "qimera/io/state_dict.h"

#include <filesystem>

namespace qimera::io {

/// Reads a file written by torch.save(model.state_dict(), path), or by torch.save of a checkpoint
/// dict that holds the state dict under "state_dict" or "model". Only the pickle instructions and
/// classes that such files use are understood; anything else (which in Python could run arbitrary
/// code) is an error naming it. Tensors come back contiguous, on the CPU, without shared storage.
StateDict read_torch_zip(const std::filesystem::path& path);

}  // namespace qimera::io
