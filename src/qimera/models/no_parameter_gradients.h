// Switching a module's parameter gradients off for a scope.
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>

#include <vector>

namespace qimera::models {

/// Turns off requires_grad on every parameter of `module` that has it, and turns it back on for
/// exactly those when destroyed: work that runs gradients through a module without training it
/// (G learning through Q, distilling images from the teacher) need not compute them.
class NoParameterGradients {
 public:
  explicit NoParameterGradients(torch::nn::Module& module) {
    for (auto& p : module.parameters()) {
      if (p.requires_grad()) {
        p.set_requires_grad(false);
        params_.push_back(p);
      }
    }
  }
  ~NoParameterGradients() {
    for (auto& p : params_) p.set_requires_grad(true);
  }
  NoParameterGradients(const NoParameterGradients&) = delete;
  NoParameterGradients& operator=(const NoParameterGradients&) = delete;

 private:
  std::vector<at::Tensor> params_;
};

}  // namespace qimera::models
