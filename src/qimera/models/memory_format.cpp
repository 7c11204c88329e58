#include "qimera/models/memory_format.h"

#include <ATen/ATen.h>
#include <torch/nn/module.h>

namespace qimera::models {

void use_channels_last(torch::nn::Module& module) {
  at::NoGradGuard no_grad;
  auto convert = [](at::Tensor& t) {
    if (t.defined() && t.dim() == 4) t.set_data(t.data().contiguous(at::MemoryFormat::ChannelsLast));
  };
  for (auto& p : module.parameters()) convert(p);
  for (auto& b : module.buffers()) convert(b);
}

}  // namespace qimera::models
