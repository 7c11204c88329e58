// Preprocessing, as torchvision's evaluation transforms do it: per-sample geometry on uint8 images
// (Resize, CenterCrop, Pad, grey to RGB), then per-batch ToTensor + Normalize on the target device.
// It is part of a model's description (saved in model cards), hence the JSON form.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace qimera::data {

/// Bounds of what a model card may ask for: sizes in pixels, and mean/std values.
inline constexpr int64_t kMaxPreprocessSize = 4096;
inline constexpr size_t kMaxPreprocessChannels = 64;

struct Preprocess {
  int64_t resize = 0;        // shorter side to this size (torchvision Resize(int)); 0 = keep
  int64_t center_crop = 0;   // square crop of this size; 0 = none
  int64_t pad = 0;           // zero pixels added on every side
  bool grey_to_rgb = false;  // replicate a single channel to three
  std::vector<float> mean;   // one value, or one per channel
  std::vector<float> std;
};

/// "cifar10", "cifar100", "imagenet", "mnist", "fashion-mnist" or "none" (mean 0, std 1).
Preprocess preprocess_preset(const std::string& name);
std::vector<std::string> preprocess_preset_names();

/// The preset that suits a data set kind of DatasetSpec (folder -> imagenet, idx -> none).
std::string default_preset_name(const std::string& dataset_kind);

/// Throws Error on negative sizes, mean/std of different or zero length, or std <= 0.
void validate(const Preprocess& preprocess);

/// Whether any per-sample geometry (resize, crop, pad) is requested.
bool has_geometry(const Preprocess& preprocess);

nlohmann::json preprocess_to_json(const Preprocess& preprocess);
/// Missing fields keep their defaults; wrong types or invalid values are errors.
Preprocess preprocess_from_json(const nlohmann::json& json);
void to_json(nlohmann::json& json, const Preprocess& preprocess);
void from_json(const nlohmann::json& json, Preprocess& preprocess);

// Geometry on one uint8 image [C,H,W].

/// Shorter side to `size`, the longer to int(size * long / short), bilinear with antialiasing as
/// PIL does it, rounded to uint8. Unchanged when the shorter side already is `size`.
at::Tensor resize_shorter(const at::Tensor& image, int64_t size);
/// The centred size x size window; top = int(round((H - size) / 2.0)) with Python's rounding.
at::Tensor center_crop(const at::Tensor& image, int64_t size);
at::Tensor pad_zeros(const at::Tensor& image, int64_t pad);
/// One channel replicated to three along dim -3 (works for [C,H,W] and [N,C,H,W]); else unchanged.
at::Tensor grey_to_rgb(const at::Tensor& images);
/// resize_shorter, center_crop, pad_zeros, grey_to_rgb, as configured.
at::Tensor apply_geometry(const Preprocess& preprocess, const at::Tensor& image);

/// ToTensor + Normalize for uint8 [N,C,H,W] on one device: (x / 255 - mean) / std in float32, in
/// torchvision's order of operations. mean/std live on the device, made once.
class Normalizer {
 public:
  Normalizer(const Preprocess& preprocess, c10::Device device);
  /// Error if mean/std have neither 1 nor C values.
  at::Tensor operator()(const at::Tensor& images) const;

 private:
  at::Tensor mean_;
  at::Tensor std_;
  at::Tensor scale_;
};

/// Normalizer(preprocess, images.device())(images).
at::Tensor normalize(const at::Tensor& images, const Preprocess& preprocess);

}  // namespace qimera::data
