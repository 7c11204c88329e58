#include "qimera/quant/integer_pack.h"

#include "qimera/core/error.h"
#include "qimera/quant/fake_quantize.h"

#include <ATen/ATen.h>

namespace qimera::quant {
namespace {
bool nibbles(int bits) { return bits <= 4; }
}  // namespace

std::string packing_name(int bits) { return nibbles(bits) ? "nibbles" : "int8"; }

at::Tensor pack_integers(const at::Tensor& values, int bits) {
  check_bits(bits);
  const auto flat = values.detach().reshape({-1}).cpu().to(at::kLong);
  if (flat.numel() > 0) {
    require(flat.min().item<int64_t>() >= qmin(bits) && flat.max().item<int64_t>() <= qmax(bits),
            "pack_integers: values outside the {}-bit range [{}, {}]", bits, qmin(bits), qmax(bits));
  }
  if (!nibbles(bits)) return flat.to(at::kChar);
  auto offset = (flat - qmin(bits)).to(at::kByte);
  if (offset.numel() % 2) offset = at::cat({offset, at::zeros({1}, at::kByte)});
  const auto pairs = offset.reshape({-1, 2});
  return pairs.select(1, 0).bitwise_or(pairs.select(1, 1).__lshift__(4)).contiguous();
}

at::Tensor unpack_integers(const at::Tensor& packed, int bits, int64_t count) {
  check_bits(bits);
  const auto bytes = packed.reshape({-1}).cpu();
  if (!nibbles(bits)) {
    require(bytes.scalar_type() == at::kChar && bytes.numel() == count,
            "unpack_integers: expected {} int8 values, got {} of {}", count, bytes.numel(),
            bytes.scalar_type());
    return bytes.to(at::kFloat);
  }
  require(bytes.scalar_type() == at::kByte && bytes.numel() == (count + 1) / 2,
          "unpack_integers: expected {} bytes for {} {}-bit values, got {} of {}", (count + 1) / 2,
          count, bits, bytes.numel(), bytes.scalar_type());
  const auto low = bytes.bitwise_and(0x0F);
  const auto high = bytes.__rshift__(4);
  const auto offset = at::stack({low, high}, 1).reshape({-1}).slice(0, 0, count);
  const auto values = offset.to(at::kFloat) + static_cast<double>(qmin(bits));
  require(values.numel() == 0 || values.max().item<double>() <= static_cast<double>(qmax(bits)),
          "unpack_integers: corrupt {}-bit data", bits);
  return values;
}

}  // namespace qimera::quant
