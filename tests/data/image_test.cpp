#include "qimera/core/atomic_file.h"
#include "qimera/core/error.h"
#include "qimera/data/image_codec.h"
#include "qimera/data/image_folder.h"
#include "support/test_support.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/resource.h>

namespace qimera::data {
namespace {
namespace fs = std::filesystem;
using qimera::testing::TempDir;
using qimera::testing::write_bytes;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

// A minimal PNG writer (stored, uncompressed deflate blocks), independent of libpng, so that the
// decoder is checked against the format rather than against its own library.

using qimera::testing::be32;

uint32_t crc32(const std::string& data) {
  uint32_t crc = 0xffffffffu;
  for (const char ch : data) {
    crc ^= static_cast<uint8_t>(ch);
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return crc ^ 0xffffffffu;
}

uint32_t adler32(const std::string& data) {
  uint32_t a = 1, b = 0;
  for (const char ch : data) {
    a = (a + static_cast<uint8_t>(ch)) % 65521;
    b = (b + a) % 65521;
  }
  return (b << 16) | a;
}

std::string chunk(const std::string& type, const std::string& data) {
  return be32(static_cast<uint32_t>(data.size())) + type + data + be32(crc32(type + data));
}

std::string zlib_stored(const std::string& raw) {
  std::string out = "\x78\x01";
  size_t offset = 0;
  do {
    const size_t n = std::min<size_t>(65535, raw.size() - offset);
    const bool last = offset + n == raw.size();
    out += static_cast<char>(last ? 1 : 0);
    out += static_cast<char>(n & 0xff);
    out += static_cast<char>(n >> 8);
    out += static_cast<char>(~n & 0xff);
    out += static_cast<char>((~n >> 8) & 0xff);
    out += raw.substr(offset, n);
    offset += n;
  } while (offset < raw.size());
  return out + be32(adler32(raw));
}

/// `rows` hold the packed pixel bytes of each row (without the filter byte).
std::string make_png(uint32_t width, int color_type, int bit_depth,
                     const std::vector<std::string>& rows, const std::string& palette = "") {
  std::string ihdr = be32(width) + be32(static_cast<uint32_t>(rows.size()));
  ihdr += {static_cast<char>(bit_depth), static_cast<char>(color_type), 0, 0, 0};
  std::string raw;
  for (const auto& row : rows) raw += std::string(1, '\0') + row;
  std::string png = "\x89PNG\r\n\x1a\n";
  png += chunk("IHDR", ihdr);
  if (!palette.empty()) png += chunk("PLTE", palette);
  return png + chunk("IDAT", zlib_stored(raw)) + chunk("IEND", "");
}

std::string bytes(std::initializer_list<int> values) {
  std::string out;
  for (const int v : values) out += static_cast<char>(v);
  return out;
}

/// [3,H,W] tensor from rows of (r,g,b) triples.
at::Tensor rgb(int64_t h, int64_t w, std::vector<int> values) {
  std::vector<int64_t> wide(values.begin(), values.end());
  return at::tensor(wide).to(at::kByte).view({h, w, 3}).permute({2, 0, 1}).contiguous();
}

#define REQUIRE_PNG() \
  if (!png_supported()) GTEST_SKIP() << "built without libpng"
#define REQUIRE_JPEG() \
  if (!jpeg_supported()) GTEST_SKIP() << "built without libjpeg-turbo"

TEST(DecodePng, Rgb8) {
  REQUIRE_PNG();
  const auto png =
      make_png(2, 2, 8, {bytes({255, 0, 0, 0, 255, 0}), bytes({0, 0, 255, 10, 20, 30})});
  EXPECT_TRUE(
      decode_image(png, "t.png").equal(rgb(2, 2, {255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30})));
}

TEST(DecodePng, GreyIsReplicatedAlphaDropped) {
  REQUIRE_PNG();
  const auto grey = make_png(3, 0, 8, {bytes({0, 128, 255})});
  EXPECT_TRUE(
      decode_image(grey, "g.png").equal(rgb(1, 3, {0, 0, 0, 128, 128, 128, 255, 255, 255})));
  const auto rgba = make_png(2, 6, 8, {bytes({1, 2, 3, 0, 4, 5, 6, 255})});
  EXPECT_TRUE(decode_image(rgba, "a.png").equal(rgb(1, 2, {1, 2, 3, 4, 5, 6})));
  const auto grey_alpha = make_png(2, 4, 8, {bytes({9, 0, 200, 17})});
  EXPECT_TRUE(decode_image(grey_alpha, "ga.png").equal(rgb(1, 2, {9, 9, 9, 200, 200, 200})));
}

TEST(DecodePng, LowAndHighBitDepthsAndPalettes) {
  REQUIRE_PNG();
  // 1-bit grey: 0b10100000 -> white, black, white (scaled to 0..255).
  const auto one_bit = make_png(3, 0, 1, {bytes({0xA0})});
  EXPECT_TRUE(
      decode_image(one_bit, "1.png").equal(rgb(1, 3, {255, 255, 255, 0, 0, 0, 255, 255, 255})));
  // 16-bit grey keeps the high byte.
  const auto sixteen = make_png(2, 0, 16, {bytes({0x12, 0x34, 0xAB, 0xCD})});
  EXPECT_TRUE(
      decode_image(sixteen, "16.png").equal(rgb(1, 2, {0x12, 0x12, 0x12, 0xAB, 0xAB, 0xAB})));
  // 2-bit palette indices 2, 0, 1.
  const auto palette =
      make_png(3, 3, 2, {bytes({0b10000100})}, bytes({10, 20, 30, 40, 50, 60, 70, 80, 90}));
  EXPECT_TRUE(
      decode_image(palette, "p.png").equal(rgb(1, 3, {70, 80, 90, 10, 20, 30, 40, 50, 60})));
}

TEST(DecodePng, CorruptFilesNameTheSource) {
  REQUIRE_PNG();
  const auto png = make_png(2, 2, 8, {bytes({1, 2, 3, 4, 5, 6})});
  EXPECT_THAT([&] { decode_image(png.substr(0, png.size() - 20), "cut.png"); },
              ThrowsMessage<Error>(AllOf(HasSubstr("cut.png"), HasSubstr("PNG"))));
  std::string bad_crc = png;
  bad_crc[30] ^= 0x55;  // inside IHDR: its CRC no longer matches
  EXPECT_THAT([&] { decode_image(bad_crc, "crc.png"); },
              ThrowsMessage<Error>(HasSubstr("crc.png")));
  EXPECT_THAT([&] { decode_image("GIF89a....", "x.gif"); },
              ThrowsMessage<Error>(AllOf(HasSubstr("x.gif"), HasSubstr("not a JPEG or PNG"))));
}

TEST(EncodePng, RoundTrips) {
  REQUIRE_PNG();
  const auto image = at::randint(0, 256, {3, 5, 7}, at::kLong).to(at::kByte);
  EXPECT_TRUE(decode_image(encode_png(image), "rt.png").equal(image));
  const auto grey = at::randint(0, 256, {1, 4, 3}, at::kLong).to(at::kByte);
  EXPECT_TRUE(decode_image(encode_png(grey), "g.png").equal(grey.expand({3, 4, 3})));
}

/// An image of 8x8 blocks of solid colours, so that JPEG's loss stays small inside each block.
at::Tensor blocks(const std::vector<std::array<int, 3>>& colours, int64_t rows, int64_t cols) {
  auto image = at::empty({3, rows * 8, cols * 8}, at::kByte);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const auto& colour = colours[static_cast<size_t>(r * cols + c)];
      for (int ch = 0; ch < 3; ++ch) {
        image[ch].narrow(0, r * 8, 8).narrow(1, c * 8, 8).fill_(colour[ch]);
      }
    }
  }
  return image;
}

int64_t max_difference(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kInt) - b.to(at::kInt)).abs().max().item<int64_t>();
}

TEST(DecodeJpeg, RgbChannelsAndLayout) {
  REQUIRE_JPEG();
  // Two block rows, three block columns: a wrong row/column or channel order changes colours.
  const auto image = blocks(
      {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 255}, {0, 0, 0}, {200, 100, 50}}, 2, 3);
  const auto decoded = decode_image(encode_jpeg(image, 100), "rgb.jpg");
  ASSERT_EQ(decoded.sizes(), (std::vector<int64_t>{3, 16, 24}));
  EXPECT_LE(max_difference(decoded, image), 4);
}

TEST(DecodeJpeg, GreyAndCmykBecomeRgb) {
  REQUIRE_JPEG();
  auto grey = at::zeros({1, 8, 16}, at::kByte);
  grey.narrow(2, 8, 8).fill_(180);
  const auto decoded = decode_image(encode_jpeg(grey, 100), "grey.jpg");
  ASSERT_EQ(decoded.size(0), 3);
  EXPECT_TRUE(decoded[0].equal(decoded[1]) && decoded[1].equal(decoded[2]));
  EXPECT_LE(max_difference(decoded[0], grey[0]), 2);
  // Adobe-inverted CMYK (255, 0, 255, 255) is magenta: no cyan, full magenta, no yellow, no black.
  auto cmyk = at::empty({4, 8, 8}, at::kByte);
  for (int ch = 0; ch < 4; ++ch) cmyk[ch].fill_(std::array<int, 4>{255, 0, 255, 255}[ch]);
  const auto magenta = decode_image(encode_jpeg(cmyk, 100), "cmyk.jpg");
  EXPECT_LE(max_difference(magenta, rgb(1, 1, {255, 0, 255}).expand({3, 8, 8})), 4);
}

TEST(DecodeJpeg, CorruptJpegNamesTheFile) {
  REQUIRE_JPEG();
  EXPECT_THAT([&] { decode_image(std::string("\xff\xd8\xff\xe0garbage-garbage", 19), "bad.jpg"); },
              ThrowsMessage<Error>(AllOf(HasSubstr("bad.jpg"), HasSubstr("JPEG"))));
}

/// A 2x2 PNG of one grey level, which identifies the image after decoding.
std::string tagged_png(int tag) {
  return make_png(2, 0, 8, {bytes({tag, tag}), bytes({tag, tag})});
}


// ---- Sizes a file claims (the hostile images) -------------------------------------------

using qimera::testing::peak_rss_kb;

/// A PNG header that claims `width` x `height` 8-bit grey pixels, with a token IDAT.
std::string claiming_png(uint32_t width, uint32_t height) {
  std::string ihdr = be32(width) + be32(height) + bytes({8, 0, 0, 0, 0});
  return "\x89PNG\r\n\x1a\n" + chunk("IHDR", ihdr) + chunk("IDAT", zlib_stored(std::string(4, '\0'))) +
         chunk("IEND", "");
}

/// A real small JPEG whose frame header is edited to claim `width` x `height`.
std::string claiming_jpeg(uint16_t width, uint16_t height) {
  std::string jpeg = encode_jpeg(at::full({1, 16, 16}, 77, at::kByte));
  const size_t sof = jpeg.find("\xff\xc0");
  EXPECT_NE(sof, std::string::npos);
  jpeg[sof + 5] = static_cast<char>(height >> 8);
  jpeg[sof + 6] = static_cast<char>(height);
  jpeg[sof + 7] = static_cast<char>(width >> 8);
  jpeg[sof + 8] = static_cast<char>(width);
  return jpeg;
}

TEST(DecodeLimits, APngClaimingGigapixelsIsRefusedBeforeAllocating) {
  REQUIRE_PNG();
  const std::string png = claiming_png(30000, 30000);
  EXPECT_LT(png.size(), 80u);
  const long before = peak_rss_kb();
  EXPECT_THAT([&] { decode_image(png, "huge.png"); },
              ThrowsMessage<Error>(AllOf(HasSubstr("huge.png"), HasSubstr("30000x30000"),
                                         HasSubstr("more than the 67108864"))));
  // Within the pixel limit, but not within what 70 bytes of deflate can hold.
  EXPECT_THAT([&] { decode_image(claiming_png(4000, 4000), "big.png"); },
              ThrowsMessage<Error>(AllOf(HasSubstr("big.png"), HasSubstr("4000x4000"),
                                         HasSubstr("more than its"))));
  EXPECT_LT(peak_rss_kb() - before, 50 * 1024);  // it took 2.8 GB before
  EXPECT_THAT([&] { decode_image(claiming_png(0, 5), "empty.png"); },
              ThrowsMessage<Error>(HasSubstr("empty.png")));
}

TEST(DecodeLimits, AJpegClaimingMoreThanItCanEncodeIsRefusedBeforeAllocating) {
  REQUIRE_JPEG();
  const long before = peak_rss_kb();
  EXPECT_THAT([&] { decode_image(claiming_jpeg(20000, 20000), "huge.jpg"); },
              ThrowsMessage<Error>(AllOf(HasSubstr("huge.jpg"), HasSubstr("20000x20000"),
                                         HasSubstr("more than the"))));
  EXPECT_THAT([&] { decode_image(claiming_jpeg(4000, 4000), "big.jpg"); },
              ThrowsMessage<Error>(AllOf(HasSubstr("big.jpg"), HasSubstr("more than its"),
                                         HasSubstr("can encode"))));
  EXPECT_LT(peak_rss_kb() - before, 50 * 1024);  // it took 2.5 GB before
  // The caller's own limit.
  const std::string jpeg = encode_jpeg(at::full({3, 16, 16}, 5, at::kByte));
  EXPECT_EQ(decode_image(jpeg, "ok.jpg", 256).size(2), 16);
  EXPECT_THAT([&] { decode_image(jpeg, "small.jpg", 255); },
              ThrowsMessage<Error>(HasSubstr("more than the 255")));
}

TEST(ImageFolder, ClassesAndFilesInTorchvisionOrder) {
  REQUIRE_PNG();
  TempDir dir;
  const fs::path root = dir / "train";
  write_bytes(root / "b_cls/one.png", tagged_png(20));
  write_bytes(root / "a_cls/y.png", tagged_png(11));
  write_bytes(root / "a_cls/B.PNG", tagged_png(10));      // upper case sorts first, as in Python
  write_bytes(root / "a_cls/sub/a.png", tagged_png(12));  // sub-folders after the folder's files
  write_bytes(root / "a_cls/notes.txt", "not an image");
  write_bytes(root / "c_cls/disguised.jpg", tagged_png(30));  // recognised by content
  const ImageFolderDataset ds(root);
  EXPECT_EQ(ds.class_names(), (std::vector<std::string>{"a_cls", "b_cls", "c_cls"}));
  ASSERT_EQ(ds.size(), 5);
  const std::vector<std::pair<int, int64_t>> expected{{10, 0}, {11, 0}, {12, 0}, {20, 1}, {30, 2}};
  for (int64_t i = 0; i < ds.size(); ++i) {
    const auto example = ds.get(i);
    EXPECT_EQ(example.label, expected[i].second) << ds.file(i);
    EXPECT_EQ(example.image.sizes(), (std::vector<int64_t>{3, 2, 2}));
    EXPECT_TRUE(example.image.eq(expected[i].first).all().item<bool>()) << ds.file(i);
  }
  EXPECT_EQ(ds.file(2).filename(), "a.png");
}

TEST(ImageFolder, EmptyClassFolderAndEmptyRootAreErrors) {
  TempDir dir;
  write_bytes(dir / "root/full/x.png", tagged_png(1));
  fs::create_directories(dir / "root/empty_class");
  write_bytes(dir / "root/empty_class/readme.txt", "no images here");
  EXPECT_THAT([&] { ImageFolderDataset{dir / "root"}; },
              ThrowsMessage<Error>(AllOf(HasSubstr("empty_class"), HasSubstr("without"))));
  fs::create_directories(dir / "bare");
  EXPECT_THAT([&] { ImageFolderDataset{dir / "bare"}; },
              ThrowsMessage<Error>(AllOf(HasSubstr("bare"), HasSubstr("no class sub-folders"))));
  EXPECT_THAT([&] { ImageFolderDataset{dir / "missing"}; },
              ThrowsMessage<Error>(HasSubstr("missing")));
}

TEST(ImageFolder, CorruptImageFailsOnGetNamingTheFile) {
  TempDir dir;
  write_bytes(dir / "root/cls/good.png", tagged_png(1));
  write_bytes(dir / "root/cls/zbroken.jpg", std::string("\xff\xd8\xff\xe0 broken", 11));
  const ImageFolderDataset ds(dir / "root");  // lazy: scanning does not decode
  ASSERT_EQ(ds.size(), 2);
  EXPECT_THAT([&] { ds.get(1); }, ThrowsMessage<Error>(HasSubstr("zbroken.jpg")));
}

}  // namespace
}  // namespace qimera::data
