#include "qimera/eval/input_check.h"

#include "qimera/core/error.h"

#include <ATen/ATen.h>

namespace qimera::eval {

void require_model_input(const data::Dataset& dataset, const data::Preprocess& preprocess,
                         const models::ModelSpec& spec) {
  require(dataset.size() > 0, "{}: the data set is empty", dataset.description());
  const at::Tensor image = data::apply_geometry(preprocess, dataset.get(0).image);
  const int64_t channels = image.size(0), height = image.size(1), width = image.size(2);
  if (channels == spec.in_channels && height == spec.image_size && width == spec.image_size) return;
  std::string hint = "set the preprocessing's resize / center_crop, or use data of that size";
  if (channels != spec.in_channels) {
    hint = channels == 1 && spec.in_channels == 3
               ? "grey images for an RGB model need grey_to_rgb in the preprocessing"
               : "use data with the model's number of channels";
  }
  fail("{}: images are {}x{}x{} after preprocessing, but the model ({}) takes {}x{}x{} inputs; {}",
       dataset.description(), channels, height, width, spec.describe(), spec.in_channels,
       spec.image_size, spec.image_size, hint);
}

}  // namespace qimera::eval
