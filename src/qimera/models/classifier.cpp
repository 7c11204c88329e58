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

ForwardTrace ClassifierImpl::trace(const at::Tensor& x, TraceRequest request) {
  ForwardTrace trace;
  SinkGuard guard(request.batch_norms ? batch_norms() : decltype(batch_norms()){},
                  &trace.batch_norms);
  stage_sink_ = request.stages ? &trace.stages : nullptr;
  try {
    trace.logits = forward(x);
  } catch (...) {
    stage_sink_ = nullptr;
    throw;
  }
  stage_sink_ = nullptr;
  return trace;
}

at::Tensor ClassifierImpl::run_stages(StackImpl& stack, const at::Tensor& x) {
  if (!stage_sink_) return stack.forward(x);
  return stack.forward_tapped(x, [this](const std::string& name, const at::Tensor& y) {
    if (name.rfind("stage", 0) == 0) stage_sink_->push_back(y);
  });
}

std::vector<std::shared_ptr<TappedBatchNorm2dImpl>> ClassifierImpl::batch_norms() const {
  std::vector<std::shared_ptr<TappedBatchNorm2dImpl>> out;
  for (const auto& m : modules(/*include_self=*/false)) {
    if (auto bn = std::dynamic_pointer_cast<TappedBatchNorm2dImpl>(m)) out.push_back(bn);
  }
  return out;
}

}  // namespace qimera::models
