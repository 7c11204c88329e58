// Storage of quantized integers: 5- to 8-bit values as int8, 4-bit and narrower values two per byte
// (value - qmin as an unsigned nibble, low nibble first).
#pragma once

#include <ATen/core/Tensor.h>

#include <string>

namespace qimera::quant {

/// "int8" or "nibbles".
std::string packing_name(int bits);

/// Packs grid integers (any float or integer dtype holding values in [qmin, qmax]) into bytes.
/// Example: pack_integers(at::tensor({-8, 7, 0}), 4) -> uint8 {0xF0, 0x08}
at::Tensor pack_integers(const at::Tensor& values, int bits);

/// The inverse: `count` integers as float32 (shape [count]).
at::Tensor unpack_integers(const at::Tensor& packed, int bits, int64_t count);

}  // namespace qimera::quant
