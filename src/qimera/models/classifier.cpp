#include "qimera/models/classifier.h"

namespace qimera::models {
namespace {

// Detaches the sink from every layer even if the forward throws.
class SinkGuard {
 public:
  SinkGuard(std::vector<std::shared_ptr<TappedBatchNorm2dImpl>> layers,
            std::vector<BnObservation>* sink)
      : layers_(std::move(layers)) {
    for (auto& l : layers_) l->set_sink(sink);
  }
  ~SinkGuard() {
    for (auto& l : layers_) l->set_sink(nullptr);
  }

 private:
  std::vector<std::shared_ptr<TappedBatchNorm2dImpl>> layers_;
};

}  // namespace

ForwardTrace ClassifierImpl::trace(const at::Tensor& x) {
  ForwardTrace trace;
  SinkGuard guard(batch_norms(), &trace.batch_norms);
  trace.logits = forward(x);
  return trace;
}

std::vector<std::shared_ptr<TappedBatchNorm2dImpl>> ClassifierImpl::batch_norms() const {
  std::vector<std::shared_ptr<TappedBatchNorm2dImpl>> out;
  for (const auto& m : modules(/*include_self=*/false)) {
    if (auto bn = std::dynamic_pointer_cast<TappedBatchNorm2dImpl>(m)) out.push_back(bn);
  }
  return out;
}

}  // namespace qimera::models
