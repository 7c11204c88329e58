#include "qimera/models/batch_norm.h"

#include <ATen/ATen.h>

#include <ostream>

namespace qimera::models {

TappedBatchNorm2dImpl::TappedBatchNorm2dImpl(int64_t channels, double eps_, double momentum_)
    : eps(eps_), momentum(momentum_) {
  weight = register_parameter("weight", at::ones({channels}));
  bias = register_parameter("bias", at::zeros({channels}));
  running_mean = register_buffer("running_mean", at::zeros({channels}));
  running_var = register_buffer("running_var", at::ones({channels}));
  num_batches_tracked = register_buffer("num_batches_tracked", at::zeros({}, at::kLong));
}

void TappedBatchNorm2dImpl::pretty_print(std::ostream& stream) const {
  stream << "TappedBatchNorm2d(" << weight.size(0) << ", eps=" << eps << ", momentum=" << momentum
         << ")";
}

at::Tensor TappedBatchNorm2dImpl::forward(const at::Tensor& x) {
  if (sink_) sink_->push_back({x, this});
  if (is_training()) {
    at::NoGradGuard no_grad;
    num_batches_tracked.add_(1);
  }
  return at::batch_norm(x, weight, bias, running_mean, running_var, is_training(), momentum, eps,
                        at::globalContext().userEnabledCuDNN());
}

}  // namespace qimera::models
