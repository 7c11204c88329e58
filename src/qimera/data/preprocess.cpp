#include "qimera/data/preprocess.h"

#include "qimera/core/error.h"
#include "qimera/core/json_value.h"
#include "qimera/data/image_codec.h"  // kMaxImagePixels
#include "qimera/core/json_value.h"

#include <ATen/ATen.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <map>

namespace qimera::data {
namespace {

const std::map<std::string, Preprocess>& presets() {
  static const std::map<std::string, Preprocess> table = {
      {"cifar10", {0, 0, 0, false, {0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f}}},
      {"cifar100", {0, 0, 0, false, {0.5071f, 0.4867f, 0.4408f}, {0.2675f, 0.2557f, 0.2761f}}},
      {"imagenet", {256, 224, 0, false, {0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}}},
      {"mnist", {0, 0, 0, false, {0.1307f}, {0.3081f}}},
      {"fashion-mnist", {0, 0, 0, false, {0.2860f}, {0.3530f}}},
      {"none", {0, 0, 0, false, {0.0f}, {1.0f}}},
  };
  return table;
}

void check_image(const at::Tensor& image, const char* what) {
  require(image.defined() && image.scalar_type() == at::kByte && image.dim() == 3,
          "{}: expected a uint8 [C,H,W] image", what);
}

/// Python's round() of half an integer: ties go to the even neighbour.
int64_t round_half(int64_t twice) {
  const int64_t floor = twice / 2;
  return twice % 2 == 0 || floor % 2 == 0 ? floor : floor + 1;
}

/// A float as the shortest decimal that reads back as the same float (0.4914, not 0.4914000034).
double shortest_decimal(float value) { return std::stod(fmt::format("{}", value)); }

std::vector<double> shortest_decimals(const std::vector<float>& values) {
  std::vector<double> out;
  for (const float v : values) out.push_back(shortest_decimal(v));
  return out;
}

at::Tensor channel_tensor(const std::vector<float>& values, c10::Device device) {
  auto cpu = at::from_blob(const_cast<float*>(values.data()),
                           {1, static_cast<int64_t>(values.size()), 1, 1}, at::kFloat);
  return cpu.to(device, at::kFloat, /*non_blocking=*/false, /*copy=*/true);
}

}  // namespace

Preprocess preprocess_preset(const std::string& name) {
  const auto it = presets().find(name);
  require(it != presets().end(), "unknown preprocessing preset '{}' (known: {})", name,
          fmt::join(preprocess_preset_names(), ", "));
  return it->second;
}

std::vector<std::string> preprocess_preset_names() {
  std::vector<std::string> names;
  for (const auto& [name, preset] : presets()) names.push_back(name);
  return names;
}

std::string default_preset_name(const std::string& dataset_kind) {
  static const std::map<std::string, std::string> table = {
      {"cifar10", "cifar10"}, {"cifar100", "cifar100"},           {"folder", "imagenet"},
      {"mnist", "mnist"},     {"fashion-mnist", "fashion-mnist"}, {"idx", "none"}};
  const auto it = table.find(dataset_kind);
  require(it != table.end(), "no default preprocessing for data set kind '{}'", dataset_kind);
  return it->second;
}

void validate(const Preprocess& p) {
  require(p.resize >= 0 && p.center_crop >= 0 && p.pad >= 0,
          "preprocessing sizes must not be negative (resize {}, center_crop {}, pad {})", p.resize,
          p.center_crop, p.pad);
  require(p.resize <= kMaxPreprocessSize && p.center_crop <= kMaxPreprocessSize &&
              p.pad <= kMaxPreprocessSize,
          "preprocessing sizes must be at most {} (resize {}, center_crop {}, pad {})",
          kMaxPreprocessSize, p.resize, p.center_crop, p.pad);
  require(!p.mean.empty() && p.mean.size() == p.std.size(),
          "preprocessing needs as many mean as std values, at least one ({} and {})", p.mean.size(),
          p.std.size());
  for (const float s : p.std) {
    require(s > 0 && std::isfinite(s), "preprocessing std values must be positive: {}", p.std);
  }
  for (const float m : p.mean) {
    require(std::isfinite(m), "preprocessing mean values must be finite: {}", p.mean);
  }
}

bool has_geometry(const Preprocess& p) { return p.resize > 0 || p.center_crop > 0 || p.pad > 0; }

nlohmann::json preprocess_to_json(const Preprocess& p) {
  return {{"resize", p.resize},
          {"center_crop", p.center_crop},
          {"pad", p.pad},
          {"grey_to_rgb", p.grey_to_rgb},
          {"mean", shortest_decimals(p.mean)},
          {"std", shortest_decimals(p.std)}};
}

namespace {

std::vector<float> channel_values(const nlohmann::json& value, const std::string& what) {
  require(value.is_array() && !value.empty() && value.size() <= kMaxPreprocessChannels,
          "{} is {}, expected a list of 1 to {} numbers", what, json_excerpt(value),
          kMaxPreprocessChannels);
  std::vector<float> out;
  for (size_t i = 0; i < value.size(); ++i) {
    out.push_back(static_cast<float>(json_number(value[i], fmt::format("{}[{}]", what, i))));
  }
  return out;
}

}  // namespace

Preprocess preprocess_from_json(const nlohmann::json& json) {
  require(json.is_object(), "preprocessing: expected a JSON object, got {}", json_excerpt(json));
  Preprocess p;
  for (const auto& [key, value] : json.items()) {
    const std::string what = "preprocessing " + key;
    if (key == "resize") {
      p.resize = json_integer(value, what, INT64_MIN, INT64_MAX);
    } else if (key == "center_crop") {
      p.center_crop = json_integer(value, what, INT64_MIN, INT64_MAX);
    } else if (key == "pad") {
      p.pad = json_integer(value, what, INT64_MIN, INT64_MAX);
    } else if (key == "grey_to_rgb") {
      p.grey_to_rgb = json_bool(value, what);
    } else if (key == "mean") {
      p.mean = channel_values(value, what);
    } else if (key == "std") {
      p.std = channel_values(value, what);
    } else {
      fail("preprocessing: unknown field '{}' (known: resize, center_crop, pad, grey_to_rgb, "
           "mean, std)", key);
    }
  }
  validate(p);
  return p;
}

void to_json(nlohmann::json& json, const Preprocess& preprocess) {
  json = preprocess_to_json(preprocess);
}

void from_json(const nlohmann::json& json, Preprocess& preprocess) {
  preprocess = preprocess_from_json(json);
}

at::Tensor resize_shorter(const at::Tensor& image, int64_t size) {
  check_image(image, "resize");
  require(size > 0, "resize: size must be positive, got {}", size);
  const int64_t h = image.size(1), w = image.size(2);
  require(h > 0 && w > 0, "resize: empty image");
  const int64_t shorter = std::min(h, w), longer = std::max(h, w);
  if (shorter == size) return image;
  const auto other = static_cast<int64_t>(static_cast<double>(size * longer) / shorter);
  require(size * other <= kMaxImagePixels,
          "resize: a {}x{} image resized to {} on its shorter side would have {}x{} pixels, more "
          "than the {} allowed",
          h, w, size, size, other, kMaxImagePixels);
  const std::array<int64_t, 2> out =
      h <= w ? std::array<int64_t, 2>{size, other} : std::array<int64_t, 2>{other, size};
  const auto input = image.to(at::kFloat).unsqueeze(0);
  // No scale factors ({}): the sampling grid follows from the sizes alone, as in PIL.
  const auto resized =
      at::_upsample_bilinear2d_aa(input, at::IntArrayRef(out), /*align_corners=*/false, {}, {});
  return resized.squeeze(0).round().clamp(0, 255).to(at::kByte);
}

at::Tensor center_crop(const at::Tensor& image, int64_t size) {
  check_image(image, "center_crop");
  const int64_t h = image.size(1), w = image.size(2);
  require(size > 0 && size <= h && size <= w,
          "center_crop: cannot take a {0}x{0} crop of a {1}x{2} image (resize it first)", size, h,
          w);
  return image.narrow(1, round_half(h - size), size).narrow(2, round_half(w - size), size);
}

at::Tensor pad_zeros(const at::Tensor& image, int64_t pad) {
  check_image(image, "pad");
  require(pad >= 0, "pad: must not be negative, got {}", pad);
  if (pad == 0) return image;
  return at::constant_pad_nd(image, {pad, pad, pad, pad}, 0);
}

at::Tensor grey_to_rgb(const at::Tensor& images) {
  if (images.dim() < 3 || images.size(-3) != 1) return images;
  std::vector<int64_t> sizes(images.sizes().begin(), images.sizes().end());
  sizes[sizes.size() - 3] = 3;
  return images.expand(sizes).contiguous();
}

at::Tensor apply_geometry(const Preprocess& p, const at::Tensor& image) {
  at::Tensor out = image;
  if (p.resize > 0) out = resize_shorter(out, p.resize);
  if (p.center_crop > 0) out = center_crop(out, p.center_crop);
  if (p.pad > 0) out = pad_zeros(out, p.pad);
  if (p.grey_to_rgb) out = grey_to_rgb(out);
  return out;
}

Normalizer::Normalizer(const Preprocess& preprocess, c10::Device device) {
  validate(preprocess);
  mean_ = channel_tensor(preprocess.mean, device);
  scale_ = at::full({1}, 255.0f, at::TensorOptions(device).dtype(at::kFloat));
  std_ = channel_tensor(preprocess.std, device);
}

at::Tensor Normalizer::operator()(const at::Tensor& images) const {
  require(images.defined() && images.scalar_type() == at::kByte && images.dim() == 4,
          "normalize: expected uint8 [N,C,H,W] images");
  const int64_t channels = images.size(1), values = mean_.size(1);
  require(values == 1 || values == channels,
          "normalize: the preprocessing has {} mean/std values but the images have {} "
          "channel(s) (use a matching preset or grey_to_rgb)",
          values, channels);
  // ToTensor + Normalize's operations in their order, so results match torchvision bit for bit.
  // The divisor is a tensor, not a scalar: CUDA would multiply by 1/255 instead, off by an ulp.
  return images.to(mean_.device(), at::kFloat).div_(scale_).sub_(mean_).div_(std_);
}

at::Tensor normalize(const at::Tensor& images, const Preprocess& preprocess) {
  return Normalizer(preprocess, images.device())(images);
}

}  // namespace qimera::data
