#include "qimera/methods/zaq_losses.h"

#include "qimera/core/error.h"

#include <ATen/ATen.h>

#include <algorithm>

namespace qimera::methods {

at::Tensor zaq_output_discrepancy(const at::Tensor& student_logits, const at::Tensor& teacher_logits) {
  require(student_logits.sizes() == teacher_logits.sizes(), "ZAQ L_o: student {} vs teacher {}",
          student_logits.sizes(), teacher_logits.sizes());
  return at::l1_loss(student_logits, teacher_logits);
}

namespace {

at::Tensor as_matrix(const at::Tensor& x) {
  require(x.dim() == 4, "a channel-relation map needs a feature map [B, C, H, W], got {}", x.sizes());
  return x.reshape({x.size(0), x.size(1), -1});
}

at::Tensor normalize_channels(const at::Tensor& x) {
  // F.normalize(x, dim=1) in the forward pass: x / max(||x||_2 over channels, 1e-12). Its gradient at
  // a pixel whose channels are all zero is 1e12 times the incoming one; in a float model a ReLU
  // stops it, but through Q's fake-quantized activations (straight-through estimator) it reaches
  // the weights and one SGD step makes them infinite. Such pixels get no gradient here: x / ||x||
  // has none at 0, and the forward values are F.normalize's exactly.
  const auto norm = x.norm(2, {1}, /*keepdim=*/true);
  constexpr double kEps = 1e-12;
  return at::where(norm > kEps, x / norm.clamp_min(kEps), at::zeros_like(x));
}

}  // namespace

at::Tensor spatial_relation(const at::Tensor& x, double gamma) {
  const auto m = as_matrix(x);                                  // [B, C, HW]
  const auto attention = at::softmax(at::bmm(m.transpose(1, 2), m), -1);  // [B, HW, HW]
  return (gamma * at::bmm(m, attention.transpose(1, 2)) + m).view(x.sizes());
}

at::Tensor channel_relation(const at::Tensor& x, double gamma) {
  const auto m = as_matrix(x);                  // [B, C, HW]
  const auto energy = at::bmm(m, m.transpose(1, 2));  // [B, C, C]
  const auto attention = at::softmax(std::get<0>(energy.max(-1, /*keepdim=*/true)) - energy, -1);
  return (gamma * at::bmm(attention, m) + m).view(x.sizes());
}

namespace {

// Samples per piece of the spatial term: the [b, HW, HW] attention stays near 4 M floats (16 MB).
// At 28 x 28 the whole batch's attention is 157 MB per map; allocations that large bypass the
// allocator's heap (glibc maps and unmaps them, zeroing pages each time) and ran 2.5 x slower than
// pieces that stay in cache-sized heap blocks. Per-sample independence makes the pieces exact.
int64_t spatial_piece(const at::Tensor& x) {
  const int64_t hw = x.size(2) * x.size(3);
  return std::max<int64_t>(1, (int64_t{1} << 22) / (hw * hw));
}

// mean |spatial(s) - spatial(t)| computed a few samples at a time.
at::Tensor spatial_discrepancy(const at::Tensor& s, const at::Tensor& t) {
  const int64_t piece = spatial_piece(s);
  if (piece >= s.size(0)) return at::l1_loss(spatial_relation(s), spatial_relation(t));
  const auto s_pieces = s.split(piece);
  const auto t_pieces = t.split(piece);
  at::Tensor total;
  for (size_t i = 0; i < s_pieces.size(); ++i) {
    const auto sum = (spatial_relation(s_pieces[i]) - spatial_relation(t_pieces[i])).abs().sum();
    total = total.defined() ? total + sum : sum;
  }
  return total / static_cast<double>(s.numel());
}

}  // namespace

at::Tensor zaq_feature_discrepancy(const std::vector<at::Tensor>& student_stages,
                                   const std::vector<at::Tensor>& teacher_stages) {
  require(!student_stages.empty() && student_stages.size() == teacher_stages.size(),
          "ZAQ L_f: {} student stages vs {} teacher stages", student_stages.size(),
          teacher_stages.size());
  at::Tensor total;
  for (size_t i = 0; i < student_stages.size(); ++i) {
    const auto s = normalize_channels(student_stages[i]);
    const auto t = normalize_channels(teacher_stages[i]);
    require(s.sizes() == t.sizes(), "ZAQ L_f stage {}: student {} vs teacher {}", i, s.sizes(),
            t.sizes());
    const auto term = spatial_discrepancy(s, t) + at::l1_loss(channel_relation(s), channel_relation(t));
    total = total.defined() ? total + term : term;
  }
  return total;
}

at::Tensor zaq_activation(const std::vector<at::Tensor>& teacher_stages) {
  require(!teacher_stages.empty(), "ZAQ L_a: the teacher reported no stage outputs");
  return teacher_stages.back().abs().mean();
}

}  // namespace qimera::methods
