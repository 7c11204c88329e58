// What G and Q minimize: weighted sums of named terms over what the teacher P (and, for terms that
// need it, the quantized model Q) made of a batch. The trainer runs only the forwards an objective
// needs and records every term by name in the epoch's metrics.
//
//   GDFQ / Qimera  G: CE(P, targets) + 0.1 BNS(P)          Q: KD(Q, P) + CE(Q, targets)
//   ZAQ            G: -(L_o + a L_f)(P, Q) - b L_a(P)      Q: (L_o + a L_f)(P, Q)
//   Qimera + ZAQ   the same plus rho CE(P, targets) for G and rho CE(Q, targets) for Q
#pragma once

#include "qimera/methods/image_source.h"
#include "qimera/methods/metrics.h"
#include "qimera/models/classifier.h"

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace qimera::methods {

/// What a term reads.
struct Needs {
  bool targets = false;
  bool teacher_batch_norms = false;
  bool teacher_stages = false;
  bool student = false;  // Q's forward (its logits)
  bool student_stages = false;
  Needs operator|(const Needs& o) const;
};

/// The batch and the forwards made of it. `teacher` and `student` hold what the objective asked for.
struct BatchView {
  at::Tensor images;   // what the networks saw
  at::Tensor targets;  // soft labels, or undefined
  models::ForwardTrace teacher;
  models::ForwardTrace student;  // logits undefined when Q did not run
};

class Term {
 public:
  virtual ~Term() = default;
  virtual std::string_view name() const = 0;
  virtual Needs needs() const = 0;
  virtual at::Tensor value(const BatchView& view) const = 0;
};

/// Soft-label cross-entropy of P's logits (for G) or Q's logits (for Q) against the batch's targets.
std::shared_ptr<const Term> teacher_cross_entropy();
std::shared_ptr<const Term> student_cross_entropy();
/// GDFQ's batch-norm statistics loss on P's BN inputs (losses.h bns_loss).
std::shared_ptr<const Term> batch_norm_statistics();
/// KD: KL(softmax(P/T) || softmax(Q/T)) averaged over elements, times alpha T^2 (losses.h).
std::shared_ptr<const Term> distillation(double temperature, double alpha);
/// ZAQ's discrepancy between P and Q: L_o + alpha L_f (zaq_losses.h).
std::shared_ptr<const Term> zaq_discrepancy(double feature_weight);
/// ZAQ's L_a: mean |P's last-stage features|.
std::shared_ptr<const Term> zaq_activation();

struct WeightedTerm {
  std::shared_ptr<const Term> term;
  double weight = 1;
};

/// A weighted sum of terms; `prefix` names its metrics ("g" -> g_ce, g_bns and the total loss_g).
class Objective {
 public:
  Objective() = default;
  Objective(std::string prefix, std::vector<WeightedTerm> terms);
  bool empty() const { return terms_.empty(); }
  Needs needs() const;
  /// The loss, summed in the terms' order (a weight of 1 multiplies nothing, so a one-term
  /// objective is bit-identical to the term). Records each term and the total in `metrics`.
  at::Tensor loss(const BatchView& view, MetricSums& metrics) const;
  const std::string& prefix() const { return prefix_; }
  nlohmann::json to_json() const;

 private:
  std::string prefix_;
  std::vector<WeightedTerm> terms_;
};

}  // namespace qimera::methods
