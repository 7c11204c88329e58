#include "qimera/methods/objectives.h"

#include "qimera/core/error.h"
#include "qimera/methods/losses.h"
#include "qimera/methods/zaq_losses.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

namespace qimera::methods {

Needs Needs::operator|(const Needs& o) const {
  return {targets || o.targets, teacher_batch_norms || o.teacher_batch_norms,
          teacher_stages || o.teacher_stages, student || o.student || o.student_stages,
          student_stages || o.student_stages};
}

namespace {

const at::Tensor& require_targets(const BatchView& view, std::string_view term) {
  require(view.targets.defined(),
          "the '{}' loss needs labelled images, and this image source has no labels", term);
  return view.targets;
}

class TeacherCrossEntropy : public Term {
 public:
  std::string_view name() const override { return "ce"; }
  Needs needs() const override { return {true, false, false, false, false}; }
  at::Tensor value(const BatchView& v) const override {
    return soft_cross_entropy(v.teacher.logits, require_targets(v, name()));
  }
};

class StudentCrossEntropy : public Term {
 public:
  std::string_view name() const override { return "ce"; }
  Needs needs() const override { return {true, false, false, true, false}; }
  at::Tensor value(const BatchView& v) const override {
    return soft_cross_entropy(v.student.logits, require_targets(v, name()));
  }
};

class BatchNormStatistics : public Term {
 public:
  std::string_view name() const override { return "bns"; }
  Needs needs() const override { return {false, true, false, false, false}; }
  at::Tensor value(const BatchView& v) const override { return bns_loss(v.teacher.batch_norms); }
};

class Distillation : public Term {
 public:
  Distillation(double temperature, double alpha) : temperature_(temperature), alpha_(alpha) {}
  std::string_view name() const override { return "kd"; }
  Needs needs() const override { return {false, false, false, true, false}; }
  at::Tensor value(const BatchView& v) const override {
    return kd_loss(v.student.logits, v.teacher.logits.detach(), temperature_, alpha_);
  }

 private:
  double temperature_, alpha_;
};

class ZaqDiscrepancy : public Term {
 public:
  explicit ZaqDiscrepancy(double feature_weight) : feature_weight_(feature_weight) {}
  std::string_view name() const override { return "discrepancy"; }
  Needs needs() const override { return {false, false, true, true, true}; }
  at::Tensor value(const BatchView& v) const override {
    const auto output = zaq_output_discrepancy(v.student.logits, v.teacher.logits);
    if (feature_weight_ == 0) return output;
    return output + feature_weight_ * zaq_feature_discrepancy(v.student.stages, v.teacher.stages);
  }

 private:
  double feature_weight_;
};

class ZaqActivation : public Term {
 public:
  std::string_view name() const override { return "activation"; }
  Needs needs() const override { return {false, false, true, false, false}; }
  at::Tensor value(const BatchView& v) const override { return zaq_activation(v.teacher.stages); }
};

}  // namespace

std::shared_ptr<const Term> teacher_cross_entropy() { return std::make_shared<TeacherCrossEntropy>(); }
std::shared_ptr<const Term> student_cross_entropy() { return std::make_shared<StudentCrossEntropy>(); }
std::shared_ptr<const Term> batch_norm_statistics() { return std::make_shared<BatchNormStatistics>(); }
std::shared_ptr<const Term> distillation(double temperature, double alpha) {
  return std::make_shared<Distillation>(temperature, alpha);
}
std::shared_ptr<const Term> zaq_discrepancy(double feature_weight) {
  return std::make_shared<ZaqDiscrepancy>(feature_weight);
}
std::shared_ptr<const Term> zaq_activation() { return std::make_shared<ZaqActivation>(); }

Objective::Objective(std::string prefix, std::vector<WeightedTerm> terms)
    : prefix_(std::move(prefix)), terms_(std::move(terms)) {
  for (const auto& t : terms_) require(t.term != nullptr, "objective '{}': a missing term", prefix_);
}

Needs Objective::needs() const {
  Needs n;
  for (const auto& t : terms_) n = n | t.term->needs();
  return n;
}

at::Tensor Objective::loss(const BatchView& view, MetricSums& metrics) const {
  require(!terms_.empty(), "objective '{}' has no terms", prefix_);
  at::Tensor total;
  for (const auto& t : terms_) {
    const auto value = t.term->value(view);
    metrics.add(prefix_ + "_" + std::string(t.term->name()), value);
    const auto weighted = t.weight == 1.0 ? value : t.weight * value;
    total = total.defined() ? total + weighted : weighted;
  }
  metrics.add("loss_" + prefix_, total);
  return total;
}

nlohmann::json Objective::to_json() const {
  auto terms = nlohmann::json::array();
  for (const auto& t : terms_) terms.push_back({{"term", std::string(t.term->name())}, {"weight", t.weight}});
  return terms;
}

}  // namespace qimera::methods
