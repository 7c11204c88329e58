// The interface every zoo model implements: logits, penultimate features (analysis and EEI need
// them) and a traced forward that records every batch-norm input in forward order (the BNS loss)
// and, on request, the output of every residual stage (ZAQ's feature discrepancy).
#pragma once

#include "qimera/models/batch_norm.h"
#include "qimera/models/model_spec.h"
#include "qimera/models/stack.h"

#include <torch/nn/module.h>

#include <memory>
#include <vector>

namespace qimera::models {

struct ForwardTrace {
  at::Tensor logits;                       // [N, classes]
  std::vector<BnObservation> batch_norms;  // every batch-norm input, in forward order
  std::vector<at::Tensor> stages;          // every residual stage's output, when requested
};

/// What a traced forward records besides the logits.
struct TraceRequest {
  bool batch_norms = true;
  bool stages = false;  // ResNet: stage1..stageN; MobileNetV2: stage1..stage5 (not final_block)
};

class ClassifierImpl : public torch::nn::Module {
 public:
  explicit ClassifierImpl(ModelSpec spec) : spec_(spec) {}

  at::Tensor forward(const at::Tensor& x) { return classify(features(x)); }
  /// Penultimate features [N, feature_dim()] (after global pooling).
  virtual at::Tensor features(const at::Tensor& x) = 0;
  /// Logits from penultimate features.
  virtual at::Tensor classify(const at::Tensor& features) = 0;
  /// The last layer's weight as a [classes, feature_dim] matrix (EEI initialises embeddings from it).
  virtual at::Tensor classifier_weight() const = 0;

  /// Forward pass that also records what `request` asks for (with gradients), in forward order.
  ForwardTrace trace(const at::Tensor& x, TraceRequest request = {});

  /// The batch-norm layers in registration order.
  std::vector<std::shared_ptr<TappedBatchNorm2dImpl>> batch_norms() const;

  const ModelSpec& spec() const { return spec_; }
  int64_t feature_dim() const { return classifier_weight().size(1); }

 protected:
  /// Runs the feature stack, recording the outputs of its "stage*" layers while a trace asks.
  at::Tensor run_stages(StackImpl& stack, const at::Tensor& x);

 private:
  ModelSpec spec_;
  std::vector<at::Tensor>* stage_sink_ = nullptr;
};

using Classifier = std::shared_ptr<ClassifierImpl>;

}  // namespace qimera::models
