#include "qimera/data/image_codec.h"

#include "qimera/core/error.h"

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

#include <cstring>
#include <memory>
#include <vector>

#ifdef QIMERA_HAVE_PNG
#include <png.h>
#endif
#ifdef QIMERA_HAVE_JPEG
#include <turbojpeg.h>
#endif

namespace qimera::data {
namespace {

bool looks_like_png(std::string_view bytes) {
  return bytes.size() >= 8 && std::memcmp(bytes.data(), "\x89PNG\r\n\x1a\n", 8) == 0;
}

bool looks_like_jpeg(std::string_view bytes) {
  return bytes.size() >= 2 && static_cast<uint8_t>(bytes[0]) == 0xFF &&
         static_cast<uint8_t>(bytes[1]) == 0xD8;
}

// Deflate (inside PNG) never expands more than about 1032:1.
constexpr uint64_t kMaxDeflateRatio = 1032;

/// The claimed size against the caller's limit; `what` is "PNG" or "JPEG".
void check_pixels(uint64_t width, uint64_t height, int64_t max_pixels, const std::string& source,
                  const char* what) {
  require(width > 0 && height > 0, "{}: the {} image claims {}x{} pixels", source, what, width,
          height);
  require(width * height <= static_cast<uint64_t>(max_pixels),
          "{}: the {} image claims {}x{} pixels, more than the {} this reader accepts (a damaged "
          "or hostile file, or an image to shrink first)",
          source, what, width, height, max_pixels);
}

/// uint8 [H,W,C] interleaved pixels -> [C,H,W].
[[maybe_unused]] at::Tensor to_chw(at::Tensor hwc) { return hwc.permute({2, 0, 1}).contiguous(); }

/// uint8 [C,H,W] with C in `allowed` -> contiguous [H,W,C]; `what` names the caller.
[[maybe_unused]] at::Tensor to_hwc(const at::Tensor& image, std::initializer_list<int64_t> allowed,
                                   const char* what) {
  require(image.scalar_type() == at::kByte && image.dim() == 3,
          "{}: expected a uint8 [C,H,W] image", what);
  bool ok = false;
  for (const int64_t c : allowed) ok = ok || image.size(0) == c;
  require(ok, "{}: {} channels are not supported", what, image.size(0));
  require(image.size(1) > 0 && image.size(2) > 0, "{}: empty image", what);
  return image.permute({1, 2, 0}).contiguous();
}

#ifdef QIMERA_HAVE_PNG

struct PngInput {
  std::string_view bytes;
  size_t offset = 0;
  std::string error;
  int64_t max_pixels = kMaxImagePixels;
  std::string source;
};

/// Owned by the caller's frame: libpng unwinds with longjmp, which must not skip destructors.
struct PngOutput {
  std::vector<uint8_t> pixels;
  std::vector<png_bytep> rows;
  png_uint_32 width = 0;
  png_uint_32 height = 0;
};

void png_read_bytes(png_structp png, png_bytep out, png_size_t length) {
  auto* input = static_cast<PngInput*>(png_get_io_ptr(png));
  if (input->bytes.size() - input->offset < length) png_error(png, "unexpected end of file");
  std::memcpy(out, input->bytes.data() + input->offset, length);
  input->offset += length;
}

void png_on_error(png_structp png, png_const_charp message) {
  static_cast<PngInput*>(png_get_error_ptr(png))->error = message;
  png_longjmp(png, 1);
}

void png_on_warning(png_structp, png_const_charp) {}  // Pillow ignores them too.

/// Requests 8-bit RGB whatever the stored format, the way Pillow's convert("RGB") sees it:
/// alpha and transparency dropped, no gamma correction.
void request_rgb8(png_structp png, png_infop info) {
  const int color = png_get_color_type(png, info);
  png_set_strip_16(png);
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color == PNG_COLOR_TYPE_GRAY && png_get_bit_depth(png, info) < 8) {
    png_set_expand_gray_1_2_4_to_8(png);
  }
  if (color & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
  if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) {
    png_set_gray_to_rgb(png);
  }
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
}

/// Checks the header's size before a byte of pixels is allocated: against the caller's limit, and
/// against the file's length (each row's filter byte and pixels come out of the file's deflate
/// stream). Sets `input.error` and returns false when the size cannot be right.
bool png_size_fits(png_structp png, png_infop info, PngInput& input) {
  const uint64_t width = png_get_image_width(png, info), height = png_get_image_height(png, info);
  try {
    check_pixels(width, height, input.max_pixels, input.source, "PNG");
  } catch (const Error& e) {
    input.error = e.what();
    return false;
  }
  const uint64_t raw = height * (1 + png_get_rowbytes(png, info));
  if (raw / kMaxDeflateRatio > input.bytes.size()) {
    input.error = fmt::format("{}: the PNG image claims {}x{} pixels ({} bytes of pixel data), "
                              "more than its {} bytes can hold (truncated or hostile)",
                              input.source, width, height, raw, input.bytes.size());
    return false;
  }
  return true;
}

bool decode_png_into(PngInput& input, PngOutput& output) {
  png_structp png =
      png_create_read_struct(PNG_LIBPNG_VER_STRING, &input, png_on_error, png_on_warning);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (info == nullptr) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    input.error = "out of memory";
    return false;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    return false;
  }
  png_set_read_fn(png, &input, png_read_bytes);
  png_set_chunk_malloc_max(png, 8 << 20);  // text and profile chunks that inflate without end
  png_read_info(png, info);
  if (!png_size_fits(png, info, input)) png_longjmp(png, 1);
  request_rgb8(png, info);
  output.width = png_get_image_width(png, info);
  output.height = png_get_image_height(png, info);
  if (png_get_rowbytes(png, info) != size_t{output.width} * 3) png_error(png, "not 8-bit RGB");
  output.pixels.resize(size_t{output.width} * output.height * 3);
  output.rows.resize(output.height);
  for (size_t y = 0; y < output.height; ++y) {
    output.rows[y] = output.pixels.data() + y * output.width * 3;
  }
  png_read_image(png, output.rows.data());
  png_read_end(png, nullptr);
  png_destroy_read_struct(&png, &info, nullptr);
  return true;
}

at::Tensor decode_png(std::string_view bytes, const std::string& source, int64_t max_pixels) {
  PngInput input;
  input.bytes = bytes;
  input.max_pixels = max_pixels;
  input.source = source;
  PngOutput output;
  if (!decode_png_into(input, output)) {
    // A size refusal is already a whole sentence that names the file.
    if (input.error.rfind(source + ":", 0) == 0) throw Error(input.error);
    fail("{}: unreadable PNG image ({})", source, input.error);
  }
  auto hwc = at::empty({int64_t{output.height}, int64_t{output.width}, 3}, at::kByte);
  std::memcpy(hwc.data_ptr<uint8_t>(), output.pixels.data(), output.pixels.size());
  return to_chw(hwc);
}

#else

at::Tensor decode_png(std::string_view, const std::string& source, int64_t) {
  fail(
      "{}: cannot decode PNG images: qimera was built without PNG support (install libpng and "
      "rebuild)",
      source);
}

#endif

#ifdef QIMERA_HAVE_JPEG

using TjHandle = std::unique_ptr<void, int (*)(tjhandle)>;

TjHandle make_handle(bool compress) {
  TjHandle handle(compress ? tjInitCompress() : tjInitDecompress(), tjDestroy);
  require(handle != nullptr, "cannot initialise TurboJPEG: {}", tjGetErrorStr2(nullptr));
  return handle;
}

/// Pillow reads CMYK JPEGs as Adobe-inverted and converts with its cmyk2rgb.
at::Tensor cmyk_to_rgb(const at::Tensor& inverted_cmyk) {
  auto cmyk = (255 - inverted_cmyk.to(at::kInt));
  auto nk = 255 - cmyk.narrow(2, 3, 1);
  auto product = cmyk.narrow(2, 0, 3) * nk + 128;
  auto muldiv255 = at::bitwise_right_shift(at::bitwise_right_shift(product, 8) + product, 8);
  return (nk - muldiv255).clamp(0, 255).to(at::kByte);
}

/// The frame marker (0xC0..0xCF but C4, C8, CC) that says how the JPEG is coded, or 0.
int jpeg_frame_marker(std::string_view bytes) {
  size_t pos = 2;
  while (pos + 4 <= bytes.size()) {
    if (static_cast<uint8_t>(bytes[pos]) != 0xFF) return 0;
    const int marker = static_cast<uint8_t>(bytes[pos + 1]);
    if (marker == 0xFF) {  // fill byte
      ++pos;
      continue;
    }
    if (marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC) {
      return marker;
    }
    if (marker == 0xD9 || marker == 0xDA) return 0;  // end of image, start of scan
    pos += 2 + ((static_cast<size_t>(static_cast<uint8_t>(bytes[pos + 2])) << 8) |
                static_cast<uint8_t>(bytes[pos + 3]));
  }
  return 0;
}

/// Checks the header's size before the pixels are allocated. Huffman-coded JPEGs spend at least
/// one bit on every 8x8 block of the first component, so a file of N bytes holds at most 512 N
/// pixels; an arithmetic-coded one can be denser, so only the limit applies to it.
void check_jpeg_size(std::string_view bytes, int width, int height, int64_t max_pixels,
                     const std::string& source) {
  require(width > 0 && height > 0, "{}: the JPEG image claims {}x{} pixels", source, width, height);
  check_pixels(static_cast<uint64_t>(width), static_cast<uint64_t>(height), max_pixels, source,
               "JPEG");
  const int marker = jpeg_frame_marker(bytes);
  const bool huffman = marker >= 0xC0 && marker <= 0xC7;
  const uint64_t blocks = ((uint64_t(width) + 7) / 8) * ((uint64_t(height) + 7) / 8);
  require(!huffman || blocks <= 8 * uint64_t{bytes.size()},
          "{}: the JPEG image claims {}x{} pixels, more than its {} bytes can encode (truncated or "
          "hostile)",
          source, width, height, bytes.size());
}

at::Tensor decode_jpeg(std::string_view bytes, const std::string& source, int64_t max_pixels) {
  auto handle = make_handle(false);
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  const auto size = static_cast<unsigned long>(bytes.size());
  int width = 0, height = 0, subsampling = 0, colorspace = 0;
  require(tjDecompressHeader3(handle.get(), data, size, &width, &height, &subsampling,
                              &colorspace) == 0,
          "{}: unreadable JPEG image ({})", source, tjGetErrorStr2(handle.get()));
  check_jpeg_size(bytes, width, height, max_pixels, source);
  const bool cmyk = colorspace == TJCS_CMYK || colorspace == TJCS_YCCK;
  auto hwc = at::empty({height, width, cmyk ? 4 : 3}, at::kByte);
  if (tjDecompress2(handle.get(), data, size, hwc.data_ptr<uint8_t>(), width, 0, height,
                    cmyk ? TJPF_CMYK : TJPF_RGB, TJFLAG_ACCURATEDCT) != 0) {
    // Warnings (e.g. extraneous bytes before a marker, common in ImageNet) still give an image.
    require(tjGetErrorCode(handle.get()) == TJERR_WARNING, "{}: unreadable JPEG image ({})", source,
            tjGetErrorStr2(handle.get()));
    spdlog::debug("{}: {}", source, tjGetErrorStr2(handle.get()));
  }
  return to_chw(cmyk ? cmyk_to_rgb(hwc) : hwc);
}

#else

at::Tensor decode_jpeg(std::string_view, const std::string& source, int64_t) {
  fail(
      "{}: cannot decode JPEG images: qimera was built without JPEG support (install "
      "libjpeg-turbo and rebuild)",
      source);
}

#endif

}  // namespace

bool jpeg_supported() {
#ifdef QIMERA_HAVE_JPEG
  return true;
#else
  return false;
#endif
}

bool png_supported() {
#ifdef QIMERA_HAVE_PNG
  return true;
#else
  return false;
#endif
}

at::Tensor decode_image(std::string_view bytes, const std::string& source, int64_t max_pixels) {
  if (looks_like_jpeg(bytes)) return decode_jpeg(bytes, source, max_pixels);
  if (looks_like_png(bytes)) return decode_png(bytes, source, max_pixels);
  fail("{}: not a JPEG or PNG image ({} bytes, unknown signature)", source, bytes.size());
}

std::string encode_png(const at::Tensor& image) {
#ifdef QIMERA_HAVE_PNG
  const auto hwc = to_hwc(image, {1, 3}, "encode_png");
  png_image png{};
  png.version = PNG_IMAGE_VERSION;
  png.width = static_cast<png_uint_32>(hwc.size(1));
  png.height = static_cast<png_uint_32>(hwc.size(0));
  png.format = hwc.size(2) == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
  png_alloc_size_t size = 0;
  const void* pixels = hwc.data_ptr<uint8_t>();
  require(png_image_write_to_memory(&png, nullptr, &size, 0, pixels, 0, nullptr) != 0,
          "encode_png: {}", png.message);
  std::string out(size, '\0');
  require(png_image_write_to_memory(&png, out.data(), &size, 0, pixels, 0, nullptr) != 0,
          "encode_png: {}", png.message);
  out.resize(size);
  return out;
#else
  fail("encode_png: qimera was built without PNG support");
#endif
}

std::string encode_jpeg(const at::Tensor& image, int quality) {
#ifdef QIMERA_HAVE_JPEG
  const auto hwc = to_hwc(image, {1, 3, 4}, "encode_jpeg");
  require(quality >= 1 && quality <= 100, "encode_jpeg: quality {} is outside 1..100", quality);
  const int64_t channels = hwc.size(2);
  const int format = channels == 1 ? TJPF_GRAY : channels == 3 ? TJPF_RGB : TJPF_CMYK;
  auto handle = make_handle(true);
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  const int rc = tjCompress2(handle.get(), hwc.data_ptr<uint8_t>(), static_cast<int>(hwc.size(1)),
                             0, static_cast<int>(hwc.size(0)), format, &buffer, &size,
                             channels == 1 ? TJSAMP_GRAY : TJSAMP_444, quality, TJFLAG_ACCURATEDCT);
  std::unique_ptr<unsigned char, void (*)(unsigned char*)> owned(buffer, tjFree);
  require(rc == 0, "encode_jpeg: {}", tjGetErrorStr2(handle.get()));
  return std::string(reinterpret_cast<const char*>(buffer), size);
#else
  fail("encode_jpeg: qimera was built without JPEG support");
#endif
}

}  // namespace qimera::data
