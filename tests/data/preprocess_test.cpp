#include "qimera/data/preprocess.h"

#include "qimera/core/error.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace qimera::data {
namespace {
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

at::Tensor u8(std::vector<int64_t> values, std::vector<int64_t> shape) {
  return at::tensor(values).to(at::kByte).view(shape);
}

std::vector<int64_t> values(const at::Tensor& t) {
  const auto flat = t.to(at::kLong).contiguous().view(-1);
  return {flat.data_ptr<int64_t>(), flat.data_ptr<int64_t>() + flat.numel()};
}

TEST(Preset, Values) {
  const auto cifar10 = preprocess_preset("cifar10");
  EXPECT_EQ(cifar10.mean, (std::vector<float>{0.4914f, 0.4822f, 0.4465f}));
  EXPECT_EQ(cifar10.std, (std::vector<float>{0.2470f, 0.2435f, 0.2616f}));
  EXPECT_EQ(cifar10.resize, 0);
  const auto cifar100 = preprocess_preset("cifar100");
  EXPECT_EQ(cifar100.mean, (std::vector<float>{0.5071f, 0.4867f, 0.4408f}));
  EXPECT_EQ(cifar100.std, (std::vector<float>{0.2675f, 0.2557f, 0.2761f}));
  const auto imagenet = preprocess_preset("imagenet");
  EXPECT_EQ(imagenet.resize, 256);
  EXPECT_EQ(imagenet.center_crop, 224);
  EXPECT_EQ(imagenet.mean, (std::vector<float>{0.485f, 0.456f, 0.406f}));
  EXPECT_EQ(imagenet.std, (std::vector<float>{0.229f, 0.224f, 0.225f}));
  EXPECT_EQ(preprocess_preset("mnist").mean, std::vector<float>{0.1307f});
  EXPECT_EQ(preprocess_preset("mnist").std, std::vector<float>{0.3081f});
  EXPECT_EQ(preprocess_preset("fashion-mnist").mean, std::vector<float>{0.2860f});
  EXPECT_EQ(preprocess_preset("fashion-mnist").std, std::vector<float>{0.3530f});
  EXPECT_EQ(preprocess_preset("none").mean, std::vector<float>{0.0f});
  EXPECT_EQ(preprocess_preset("none").std, std::vector<float>{1.0f});
  EXPECT_THAT([] { preprocess_preset("cifar"); },
              ThrowsMessage<Error>(HasSubstr("known: cifar10, cifar100, fashion-mnist")));
}

TEST(Preset, DefaultPerDatasetKind) {
  EXPECT_EQ(default_preset_name("cifar10"), "cifar10");
  EXPECT_EQ(default_preset_name("cifar100"), "cifar100");
  EXPECT_EQ(default_preset_name("folder"), "imagenet");
  EXPECT_EQ(default_preset_name("mnist"), "mnist");
  EXPECT_EQ(default_preset_name("fashion-mnist"), "fashion-mnist");
  EXPECT_EQ(default_preset_name("idx"), "none");
  EXPECT_THROW(default_preset_name("svhn"), Error);
}

TEST(PreprocessJson, RoundTripsWithShortDecimals) {
  Preprocess p = preprocess_preset("imagenet");
  p.pad = 2;
  p.grey_to_rgb = true;
  const nlohmann::json json = p;
  EXPECT_EQ(json.dump(),
            R"({"center_crop":224,"grey_to_rgb":true,"mean":[0.485,0.456,0.406],"pad":2,)"
            R"("resize":256,"std":[0.229,0.224,0.225]})");
  const auto back = json.get<Preprocess>();
  EXPECT_EQ(back.resize, 256);
  EXPECT_EQ(back.center_crop, 224);
  EXPECT_EQ(back.pad, 2);
  EXPECT_TRUE(back.grey_to_rgb);
  EXPECT_EQ(back.mean, p.mean);
  EXPECT_EQ(back.std, p.std);
  const auto partial =
      preprocess_from_json(nlohmann::json::parse(R"({"mean":[0.5],"std":[0.25]})"));
  EXPECT_EQ(partial.resize, 0);
  EXPECT_EQ(partial.std, std::vector<float>{0.25f});
}

TEST(PreprocessJson, RejectsBadInput) {
  const auto parse = [](const char* text) {
    return preprocess_from_json(nlohmann::json::parse(text));
  };
  EXPECT_THAT([&] { parse(R"({"mean":[0],"std":[1],"resise":3})"); },
              ThrowsMessage<Error>(HasSubstr("unknown field 'resise'")));
  EXPECT_THAT([&] { parse(R"({"mean":[0],"std":[1],"resize":"big"})"); },
              ThrowsMessage<Error>(HasSubstr("preprocessing")));
  EXPECT_THAT([&] { parse(R"({"mean":[0],"std":[1],"resize":-1})"); },
              ThrowsMessage<Error>(HasSubstr("negative")));
  EXPECT_THAT([&] { parse(R"({"mean":[0,0],"std":[1]})"); },
              ThrowsMessage<Error>(HasSubstr("as many mean as std")));
  EXPECT_THAT([&] { parse(R"({"mean":[0],"std":[0]})"); },
              ThrowsMessage<Error>(HasSubstr("positive")));
  EXPECT_THAT([&] { parse("[1]"); }, ThrowsMessage<Error>(HasSubstr("object")));
}

TEST(Resize, ShorterSideAndTorchvisionOutputSize) {
  const auto image = at::full({3, 7, 5}, 77, at::kByte);
  const auto out = resize_shorter(image, 3);
  // Width is the shorter side: 5 -> 3; height int(3 * 7 / 5) = int(4.2) = 4.
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{3, 4, 3}));
  EXPECT_TRUE(out.eq(77).all().item<bool>());  // a constant image stays constant
  EXPECT_EQ(resize_shorter(at::zeros({1, 4, 6}, at::kByte), 2).sizes(),
            (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(resize_shorter(at::zeros({1, 4, 7}, at::kByte), 3).sizes(),
            (std::vector<int64_t>{1, 3, 5}));  // int(3 * 7 / 4) = int(5.25)
  EXPECT_TRUE(resize_shorter(image, 5).equal(image));
  EXPECT_THROW(resize_shorter(image, 0), Error);
}

TEST(Resize, AntialiasedDownscaleMatchesHandComputedPilWeights) {
  // x(y, x) = a[x] + b[y]; a 2x downscale of a bilinear filter widened to support 2 weighs the
  // input pixels around output 0 (centre 1.0) by 0.75, 0.75, 0.25 (pixel -1 is outside), and
  // around output 1 (centre 3.0) by 0.25, 0.75, 0.75, each normalized by their sum 1.75:
  //   A0 = (0.75*0 + 0.75*40 + 0.25*80) / 1.75 = 28.571   A1 = (0.25*40 + 0.75*80 + 0.75*160)
  //   / 1.75 = 108.571 B0 = (0.75*0 + 0.75*8 + 0.25*16) / 1.75  = 5.714    B1 = (0.25*8 + 0.75*16 +
  //   0.75*64) / 1.75   = 35.429
  const std::vector<int64_t> a{0, 40, 80, 160}, b{0, 8, 16, 64};
  std::vector<int64_t> pixels;
  for (const int64_t by : b)
    for (const int64_t ax : a) pixels.push_back(ax + by);
  const auto out = resize_shorter(u8(pixels, {1, 4, 4}), 2);
  EXPECT_EQ(values(out), (std::vector<int64_t>{34, 114, 64, 144}));
}

TEST(Resize, AntialiasingMixesNeighbouringBlocks) {
  // A 2x2-block image does not keep its block values under an antialiased 2x downscale (it
  // would with plain bilinear sampling): output 0 = (0.75*10 + 0.75*10 + 0.25*200) / 1.75.
  const auto image = u8({10, 10, 200, 200}, {1, 1, 4}).expand({1, 4, 4}).contiguous();
  EXPECT_EQ(values(resize_shorter(image, 2)), (std::vector<int64_t>{37, 173, 37, 173}));
}

TEST(Resize, UpscaleIsBilinearWithHalfPixelCentres) {
  // 1x2 -> 2x4: output centres at 0.25, 0.75, 1.25, 1.75 in input pixels, clamped at the border.
  const auto out = resize_shorter(u8({0, 100}, {1, 1, 2}), 2);
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{1, 2, 4}));
  EXPECT_EQ(values(out), (std::vector<int64_t>{0, 25, 75, 100, 0, 25, 75, 100}));
}

/// y * 10 + x, as uint8 [1,H,W].
at::Tensor grid(int64_t h, int64_t w) {
  return (at::arange(h, at::kLong).view({h, 1}) * 10 + at::arange(w, at::kLong).view({1, w}))
      .to(at::kByte)
      .unsqueeze(0);
}

TEST(CenterCrop, UsesPythonRounding) {
  // top = round((5 - 2) / 2) = round(1.5) = 2; left = round((6 - 2) / 2) = 2.
  EXPECT_EQ(values(center_crop(grid(5, 6), 2)), (std::vector<int64_t>{22, 23, 32, 33}));
  // round(2.5) = 2 (ties to even), round(0.5) = 0.
  EXPECT_EQ(values(center_crop(grid(6, 6), 1)), std::vector<int64_t>{22});
  EXPECT_EQ(values(center_crop(grid(3, 3), 2)), (std::vector<int64_t>{0, 1, 10, 11}));
  EXPECT_EQ(values(center_crop(grid(4, 4), 1)), std::vector<int64_t>{22});  // round(1.5) = 2
  EXPECT_THAT([] { center_crop(grid(4, 8), 5); },
              ThrowsMessage<Error>(HasSubstr("5x5 crop of a 4x8 image")));
}

TEST(Geometry, PadGreyAndOrder) {
  const auto padded = pad_zeros(grid(1, 2), 1);
  EXPECT_EQ(values(padded), (std::vector<int64_t>{0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0}));
  const auto rgb = grey_to_rgb(grid(2, 2));
  EXPECT_EQ(rgb.sizes(), (std::vector<int64_t>{3, 2, 2}));
  EXPECT_TRUE(rgb[2].equal(grid(2, 2)[0]));
  EXPECT_TRUE(grey_to_rgb(at::zeros({3, 2, 2}, at::kByte)).sizes() == rgb.sizes());
  EXPECT_EQ(grey_to_rgb(at::zeros({4, 1, 2, 2}, at::kByte)).size(1), 3);
  Preprocess p = preprocess_preset("none");
  p.resize = 4;
  p.center_crop = 2;
  p.pad = 1;
  p.grey_to_rgb = true;
  // 1x4x8 constant 9 -> resize keeps 4x8 -> crop 2x2 -> pad to 4x4 -> three channels.
  const auto out = apply_geometry(p, at::full({1, 4, 8}, 9, at::kByte));
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{3, 4, 4}));
  EXPECT_EQ(out.sum().item<int64_t>(), 3 * 4 * 9);
  EXPECT_EQ(out[1][1][1].item<int64_t>(), 9);
  EXPECT_EQ(out[1][0][1].item<int64_t>(), 0);
}

TEST(Normalize, TorchvisionFormula) {
  Preprocess p = preprocess_preset("cifar10");
  const auto images = u8({0, 255, 128, 1, 7, 200}, {1, 3, 1, 2});
  const auto out = normalize(images, p);
  ASSERT_EQ(out.scalar_type(), at::kFloat);
  const std::vector<int64_t> raw{0, 255, 128, 1, 7, 200};
  for (int c = 0; c < 3; ++c) {
    for (int x = 0; x < 2; ++x) {
      const float expected = (static_cast<float>(raw[c * 2 + x]) / 255.0f - p.mean[c]) / p.std[c];
      EXPECT_EQ(out[0][c][0][x].item<float>(), expected) << c << "," << x;
    }
  }
}

TEST(Normalize, SingleValueBroadcastsAndMismatchIsAnError) {
  const Preprocess mnist = preprocess_preset("mnist");
  const auto three = normalize(at::full({2, 3, 1, 1}, 51, at::kByte), mnist);
  EXPECT_TRUE(three.eq((51.0f / 255.0f - 0.1307f) / 0.3081f).all().item<bool>());
  const Preprocess cifar = preprocess_preset("cifar10");
  EXPECT_THAT(
      [&] {
        normalize(at::zeros({2, 1, 4, 4}, at::kByte), cifar);
      },
      ThrowsMessage<Error>(HasSubstr("3 mean/std values but the images have 1")));
  EXPECT_THROW(normalize(at::zeros({1, 4, 4}, at::kByte), cifar), Error);
}

}  // namespace
}  // namespace qimera::data
