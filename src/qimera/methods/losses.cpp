#include "qimera/methods/losses.h"

#include "qimera/core/error.h"

#include <ATen/ATen.h>

namespace qimera::methods {

at::Tensor soft_cross_entropy(const at::Tensor& logits, const at::Tensor& targets) {
  require(logits.sizes() == targets.sizes(), "soft cross-entropy: logits {} vs targets {}",
          logits.sizes(), targets.sizes());
  return -(targets * at::log_softmax(logits, 1)).sum(1).mean();
}

at::Tensor bns_loss(const std::vector<models::BnObservation>& observations) {
  require(!observations.empty(), "BNS loss: the teacher has no batch-norm layers");
  at::Tensor total;
  for (const auto& o : observations) {
    const auto mean = o.input.mean({0, 2, 3});
    const auto var = o.input.var({0, 2, 3}, /*unbiased=*/false);
    const auto term = at::mse_loss(mean, o.layer->running_mean) + at::mse_loss(var, o.layer->running_var);
    total = total.defined() ? total + term : term;
  }
  return total / static_cast<double>(observations.size());
}

at::Tensor kd_loss(const at::Tensor& student_logits, const at::Tensor& teacher_logits,
                   double temperature, double alpha) {
  require(student_logits.sizes() == teacher_logits.sizes(), "KD loss: student {} vs teacher {}",
          student_logits.sizes(), teacher_logits.sizes());
  const auto log_student = at::log_softmax(student_logits / temperature, 1);
  const auto teacher = at::softmax(teacher_logits / temperature, 1);
  // at::kl_div's default reduction is the element mean, as in the reference.
  return at::kl_div(log_student, teacher, at::Reduction::Mean) * (alpha * temperature * temperature);
}

at::Tensor agreement(const at::Tensor& logits, const at::Tensor& targets) {
  return logits.argmax(1).eq(targets.argmax(1)).to(at::kFloat).mean();
}

}  // namespace qimera::methods
