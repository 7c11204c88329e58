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
    names_.push_back(name);
  }
  at::Tensor forward(const at::Tensor& x) {
    at::Tensor y = x;
    for (const auto& layer : layers_) y = layer(y);
    return y;
  }
  /// forward() that shows every layer's output to `tap`, with the layer's name.
  at::Tensor forward_tapped(const at::Tensor& x,
                            const std::function<void(const std::string&, const at::Tensor&)>& tap) {
    at::Tensor y = x;
    for (size_t i = 0; i < layers_.size(); ++i) {
      y = layers_[i](y);
      tap(names_[i], y);
    }
    return y;
  }

 private:
  std::vector<std::function<at::Tensor(const at::Tensor&)>> layers_;
  std::vector<std::string> names_;
};
TORCH_MODULE(Stack);

}  // namespace qimera::models
