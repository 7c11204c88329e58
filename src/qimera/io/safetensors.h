// The safetensors format (https://github.com/huggingface/safetensors): an 8-byte little-endian
// header length, a JSON header naming each tensor's dtype, shape and byte range, then the raw data.
// Chosen as this project's own checkpoint format because reading it executes nothing and is easy to
// validate.
#pragma once

#include "qimera/io/state_dict.h"

#include <filesystem>
#include <map>
#include <string>

namespace qimera::io {

/// Reads every tensor, in the header's order, onto the CPU. `metadata`, when given, receives the
/// header's "__metadata__" (empty when absent). Any inconsistency (header past the end of the file,
/// byte ranges that overlap, leave gaps or disagree with shape x dtype, unknown dtype) is an error
/// that names the file.
StateDict read_safetensors(const std::filesystem::path& path,
                           std::map<std::string, std::string>* metadata = nullptr);

/// Writes `state` atomically (the file is complete or absent). Tensors may live on any device and
/// need not be contiguous. Supported dtypes: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL.
/// Example: write_safetensors(out, state_dict_of(model), {{"method", "qimera"}});
void write_safetensors(const std::filesystem::path& path, const StateDict& state,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace qimera::io
