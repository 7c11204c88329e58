// An ordered stack of named layers applied one after another. Like torch::nn::Sequential, but with a
// plain Tensor -> Tensor forward, so stacks nest (Sequential cannot hold a Sequential).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <functional>
#include <string>
#include <vector>

namespace qimera::models {

class StackImpl : public torch::nn::Module {
 public:
  /// Registers `layer` under `name` and appends it; the holder type must have forward(Tensor).
  template <typename Holder>
  void add(const std::string& name, Holder layer) {
    auto impl = register_module(name, layer);  // shared_ptr to the Impl
    layers_.push_back([impl](const at::Tensor& x) { return impl->forward(x); });
  }
  at::Tensor forward(const at::Tensor& x) {
    at::Tensor y = x;
    for (const auto& layer : layers_) y = layer(y);
    return y;
  }

 private:
  std::vector<std::function<at::Tensor(const at::Tensor&)>> layers_;
};
TORCH_MODULE(Stack);

}  // namespace qimera::models
