// Decoding (and, for tests and sample sheets, encoding) of JPEG and PNG files to RGB uint8 tensors,
// with the conversions torchvision's PIL loader applies (img.convert("RGB")).
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <string_view>

namespace qimera::data {

/// Whether this build can decode and encode each format (libjpeg-turbo / libpng found by CMake).
bool jpeg_supported();
bool png_supported();

/// The largest image the decoders produce unless told otherwise: 64 megapixels (8192 x 8192), far
/// above any photo of ImageNet; 192 MB as RGB.
inline constexpr int64_t kMaxImagePixels = int64_t{1} << 26;

/// RGB uint8 [3,H,W] from the bytes of a JPEG or PNG file; the format is recognised from the
/// bytes, not the name. Grey is replicated, alpha dropped, 16-bit reduced to its high byte,
/// palettes expanded, CMYK converted as Pillow does. Errors name `source` (the file).
/// The size a file claims is checked before anything is allocated for it: against `max_pixels`, and
/// against what its length can encode (a 62-byte PNG cannot hold 30000 x 30000 pixels).
at::Tensor decode_image(std::string_view bytes, const std::string& source,
                        int64_t max_pixels = kMaxImagePixels);

/// PNG bytes of a uint8 [1,H,W] (grey) or [3,H,W] (RGB) image.
std::string encode_png(const at::Tensor& image);

/// JPEG bytes of a uint8 [1,H,W] (grey), [3,H,W] (RGB, 4:4:4) or [4,H,W] (CMYK as stored in
/// Adobe files, i.e. inverted) image.
std::string encode_jpeg(const at::Tensor& image, int quality = 95);

}  // namespace qimera::data
