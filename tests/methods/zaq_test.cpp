// ZAQ's discrepancy against the public code's own module (re-typed in PyTorch; golden values and
// script at the end of this file), its sign conventions and its update counts.
#include "methods/support.h"
#include "qimera/methods/zaq_family.h"
#include "qimera/methods/zaq_losses.h"
#include "qimera/models/zoo.h"
#include "support/test_support.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/optim/adam.h>
#include <torch/optim/sgd.h>

namespace qimera::methods {
namespace {

using generator::GeneratorArch;
using qimera::testing::sine_tensor;

at::Tensor floats(const std::vector<float>& v) { return at::tensor(v); }

TEST(ZaqLosses, ChannelRelationMatchesThePublicCode) {
  const auto x = sine_tensor({2, 3, 2, 2}, 0.4, 0.37, 1.5);
  const auto spatial = floats({0.688379645, 1.16327596, 1.49293792, 1.63369334, 1.53077102, 1.25081062,
                               0.814936101, 0.28251332, -0.410784692, -0.936449885, -1.34515488,
                               -1.58246136, -1.6197207, -1.4429723, -1.08368492, -0.589545906,
                               0.0981801152, 0.648293793, 1.12239015, 1.45633197, 1.63752508,
                               1.56053603, 1.28722286, 0.853641868});
  const auto channel = floats({0.551671445, 0.961001277, 1.24026418, 1.35166311, 1.39678311,
                               1.08452213, 0.625476062, 0.0817747563, -0.25839901, -0.726955712,
                               -1.09712243, -1.31879878, -1.34460914, -1.17931831, -0.854412258,
                               -0.413865477, -0.0921654254, 0.463148057, 0.955776572, 1.31904542,
                               1.34906137, 1.293944, 1.06369746, 0.689484417});
  EXPECT_TRUE(at::allclose(spatial_relation(x).flatten(), spatial, 1e-5, 1e-6)) << spatial_relation(x);
  EXPECT_TRUE(at::allclose(channel_relation(x).flatten(), channel, 1e-5, 1e-6)) << channel_relation(x);
}

TEST(ZaqLosses, DiscrepancyTermsMatchThePublicCode) {
  const std::vector<at::Tensor> s{sine_tensor({2, 4, 4, 4}, 0.1, 0.21), sine_tensor({2, 6, 2, 2}, 0.9, 0.13)};
  const std::vector<at::Tensor> t{sine_tensor({2, 4, 4, 4}, 0.3, 0.19),
                                  sine_tensor({2, 6, 2, 2}, 0.2, 0.17, 0.5)};
  EXPECT_NEAR(zaq_feature_discrepancy(s, t).item<double>(), 1.21952999, 1e-5);
  EXPECT_NEAR(zaq_output_discrepancy(sine_tensor({3, 5}, 0.1, 0.7), sine_tensor({3, 5}, 0.5, 0.3)).item<double>(),
              0.859467864, 1e-6);
  EXPECT_NEAR(zaq_activation(t).item<double>(), 0.331198156, 1e-6);
  EXPECT_EQ(zaq_feature_discrepancy(t, t).item<double>(), 0.0);
}

TEST(ZaqLosses, LargeMapsComputedInPiecesGiveTheWholeBatchValueAndGradient) {
  // 32 x 32 maps: 4 samples per piece, so a batch of 6 runs as 4 + 2 (an uneven last piece).
  auto s = sine_tensor({6, 2, 32, 32}, 0.3, 0.011).requires_grad_(true);
  const auto t = sine_tensor({6, 2, 32, 32}, 0.7, 0.013, 0.2);
  const auto normalized = [](const at::Tensor& x) { return x / x.norm(2, {1}, true); };
  const auto whole = at::l1_loss(spatial_relation(normalized(s)), spatial_relation(normalized(t))) +
                     at::l1_loss(channel_relation(normalized(s)), channel_relation(normalized(t)));
  whole.backward();
  const auto whole_grad = s.grad().clone();
  s.mutable_grad().zero_();
  const auto pieces = zaq_feature_discrepancy({s}, {t});
  pieces.backward();
  const auto pieces_grad = s.grad();
  EXPECT_NEAR(pieces.item<double>(), whole.item<double>(), 1e-6 * whole.item<double>());
  EXPECT_TRUE(at::allclose(pieces_grad, whole_grad, 1e-4, 1e-9));
  EXPECT_GT(whole_grad.abs().max().item<double>(), 0.0);
}

TEST(ZaqLosses, AnAllZeroPixelPassesNoGradient) {
  // F.normalize's gradient there is 1e12 x the incoming one: through Q's straight-through
  // activations it made the first 4-bit ZAQ step infinite. Other pixels keep theirs.
  auto s = sine_tensor({1, 3, 2, 2}, 0.4, 0.37).clone();
  s.select(3, 1).select(2, 0).zero_();  // pixel (0, 1): all channels zero
  s.requires_grad_(true);
  const std::vector<at::Tensor> t{sine_tensor({1, 3, 2, 2}, 0.2, 0.17, 0.5)};
  zaq_feature_discrepancy({s}, t).backward();
  const auto grad = s.grad();
  EXPECT_TRUE(at::isfinite(grad).all().item<bool>());
  EXPECT_EQ(grad.select(3, 1).select(2, 0).abs().max().item<double>(), 0.0);
  EXPECT_GT(grad.select(3, 0).select(2, 0).abs().max().item<double>(), 0.0);
  EXPECT_LT(grad.abs().max().item<double>(), 100.0);
}

// A ZAQ trainer on a small random teacher (the sign of an update does not need a trained one).
struct ZaqRig {
  ZaqOptions o{GeneratorArch::Zaq};
  models::Classifier teacher = [] {
    at::manual_seed(3);
    auto p = models::build_model(models::ModelSpec{models::Arch::ResNet20Cifar, 4, 1, 8});
    p->eval();
    return p;
  }();
  ZaqRig() {
    o.schedule.batch_size = 16;
    o.schedule.iterations = 1;
    o.schedule.observe_epochs = 1;
    o.loop.epochs = 3;
  }
};

double discrepancy(DataFreeTrainer& t, const generator::LatentBatch& z, const ZaqLoss& zaq) {
  at::NoGradGuard no_grad;
  const auto images = t.generator()->forward(z);
  const auto p = t.teacher()->trace(images, {false, true});
  const auto q = t.quantized()->trace(images, {false, true});
  return (zaq_output_discrepancy(q.logits, p.logits) +
          zaq.feature_weight * zaq_feature_discrepancy(q.stages, p.stages))
      .item<double>();
}

// One G step, then one Q step, on the same latent batch: the discrepancy goes up, then down.
struct SignResult {
  double before, after_g, after_q;
};

SignResult sign_steps(int bits, double lr_g, double lr_q) {
  ZaqRig s;
  s.o.quant.weight_bits = s.o.quant.act_bits = bits == 0 ? 8 : bits;
  s.o.student.lr_q = 1e-4;
  auto trainer = make_zaq_trainer(s.o, nullptr, s.teacher, c10::kCPU);
  MetricSums m;
  trainer->begin_epoch(0, 1.0);
  for (int i = 0; i < 2; ++i) trainer->iteration(0, m);  // ranges observed
  trainer->end_epoch(0);
  trainer->begin_epoch(1, 1.0);
  {
    // Q a little away from P, so that a step has somewhere to go: a Q that starts as P's 8-bit copy
    // sits at the discrepancy's floor, where any step of this size overshoots (which way it then
    // went depended on the CPU's summation order). Bits 0: a float Q, whose discrepancy is smooth.
    if (bits == 0) quant::set_quantization_enabled(*trainer->quantized(), false);
    at::NoGradGuard no_grad;
    at::manual_seed(9);
    for (auto& p : trainer->quantized()->parameters()) p.add_(0.05 * p.std() * at::randn_like(p));
  }
  at::manual_seed(5);
  const auto z = trainer->generator()->sample(16, {2, 0.0}, c10::kCPU);
  SignResult r;
  // The generator runs in train mode throughout: the same z gives the same batch statistics.
  r.before = discrepancy(*trainer, z, s.o.zaq);
  {
    torch::optim::SGD sgd(trainer->generator()->parameters(), torch::optim::SGDOptions(lr_g));
    sgd.zero_grad();  // the trainer's last step left its gradients
    const auto images = trainer->generator()->forward(z);
    BatchView v;
    v.images = images;
    v.teacher = trainer->teacher()->trace(images, {false, true});
    v.student = trainer->quantized()->trace(images, {false, true});
    MetricSums unused;
    zaq_generator_objective(s.o.zaq, 0).loss(v, unused).backward();
    sgd.step();
  }
  r.after_g = discrepancy(*trainer, z, s.o.zaq);
  {
    at::Tensor images;
    BatchView v;
    {
      at::NoGradGuard no_grad;
      images = trainer->generator()->forward(z);
      v.teacher = trainer->teacher()->trace(images, {false, true});
    }
    v.images = images;
    torch::optim::SGD sgd(trainer->quantized()->parameters(), torch::optim::SGDOptions(lr_q));
    sgd.zero_grad();
    v.student = trainer->quantized()->trace(images, {false, true});
    MetricSums unused;
    zaq_student_objective(s.o.zaq, 0).loss(v, unused).backward();
    sgd.step();
  }
  r.after_q = discrepancy(*trainer, z, s.o.zaq);
  return r;
}

// The quantized discrepancy jumps wherever an activation crosses a rounding boundary: at 8 bits on
// this rig such jumps move it by up to about 0.007 (a G step of 1e-6, measured), so the steps are
// sized to move it by ten times that (G 1e-3: +0.07; Q 1e-4: -0.08), and the first-order effect is
// checked on a float Q (0) and at 8 bits, not at 4.
TEST(Zaq, GeneratorStepsRaiseTheDiscrepancyAndQuantizedStepsLowerIt) {
  for (int bits : {0, 8}) {
    const auto r = sign_steps(bits, 1e-3, 1e-4);
    EXPECT_GT(r.after_g, r.before) << bits << " bits: G's step should raise the discrepancy";
    EXPECT_LT(r.after_q, r.after_g) << bits << " bits: Q's step should lower it";
  }
}

TEST(Zaq, EachIterationMakesFiveQuantizedStepsThenOneGeneratorStep) {
  ZaqRig s;
  auto trainer = make_zaq_trainer(s.o, nullptr, s.teacher, c10::kCPU);
  std::vector<std::string> phases;
  MetricSums m;
  trainer->begin_epoch(0, 1.0);
  trainer->iteration(0, m, [&](const char* phase) { phases.emplace_back(phase); });
  const auto count = [&](const std::string& p) { return std::count(phases.begin(), phases.end(), p); };
  EXPECT_EQ(count("quantized step"), 5);
  EXPECT_EQ(count("generator step"), 1);
  // In that order: every Q step before G's.
  const auto last_q = std::find(phases.rbegin(), phases.rend(), "quantized step");
  const auto g = std::find(phases.begin(), phases.end(), "generator step");
  EXPECT_LT(std::distance(phases.begin(), last_q.base()), std::distance(phases.begin(), g) + 1);
  // Metrics: five Q losses averaged, one G loss.
  bool has_q = false;
  for (const auto& [name, value] : m.means()) has_q |= name == "loss_q";
  EXPECT_TRUE(has_q);
}

TEST(Zaq, TheGeneratorHasNoLabelsAndQimeraZaqsHas) {
  ZaqRig s;
  auto zaq = make_zaq_trainer(s.o, nullptr, s.teacher, c10::kCPU);
  EXPECT_FALSE(zaq->generator()->options().uses_labels());
  EXPECT_EQ(zaq->generator()->options().latent_dim, 256);
  EXPECT_EQ(zaq->generator()->options().body_eps, 1e-5);
  ZaqOptions q(GeneratorArch::ZaqEmbedding);
  q.schedule = s.o.schedule;
  q.loop = s.o.loop;
  QimeraAdditions additions;
  auto qz = make_zaq_trainer(q, &additions, s.teacher, c10::kCPU);
  EXPECT_TRUE(qz->generator()->options().uses_labels());
  EXPECT_EQ(qz->generator()->options().latent_dim, 64);  // the teacher's feature width
  MetricSums m;
  qz->begin_epoch(0, 1.0);
  qz->iteration(0, m);
  bool ce = false;
  for (const auto& [name, value] : m.means()) ce |= name == "g_ce" || name == "q_ce";
  EXPECT_TRUE(ce) << "Qimera + ZAQ adds rho CE";
}

}  // namespace
}  // namespace qimera::methods

/* Golden values (python3 with PyTorch 1.13): ZAQ-code's SCRM module (utils/loss.py) re-typed.

import math, torch, torch.nn as nn, torch.nn.functional as F
def sine(shape, phase=0.3, step=0.007, amp=1.0):
    n = math.prod(shape); j = torch.arange(n, dtype=torch.float64)
    return (amp * torch.sin(phase + step * j)).float().reshape(shape)
class SCRM(nn.Module):
    def __init__(self, gamma=0.1):
        super().__init__(); self.softmax = nn.Softmax(dim=-1); self.gamma = gamma
    def spatial_wise(self, x):
        b, C, h, w = x.size()
        q = x.view(b, -1, w*h).permute(0, 2, 1); k = x.view(b, -1, w*h)
        att = self.softmax(torch.bmm(q, k)); v = x.view(b, -1, w*h)
        return self.gamma * torch.bmm(v, att.permute(0, 2, 1)).view(b, C, h, w) + x
    def channel_wise(self, x):
        b, C, h, w = x.size()
        q = x.view(b, C, -1); k = x.view(b, C, -1).permute(0, 2, 1)
        e = torch.bmm(q, k); e = torch.max(e, -1, keepdim=True)[0].expand_as(e) - e
        att = self.softmax(e)
        return self.gamma * torch.bmm(att, x.view(b, C, -1)).view(b, C, h, w) + x
    def cal_loss(self, f_s, f_t):
        f_s = F.normalize(f_s, dim=1); f_t = F.normalize(f_t, dim=1)
        return (F.l1_loss(self.channel_wise(f_s), self.channel_wise(f_t))
                + F.l1_loss(self.spatial_wise(f_s), self.spatial_wise(f_t)))
    def forward(self, g_s, g_t):
        return sum(self.cal_loss(f_s, f_t) for f_s, f_t in zip(g_s, g_t))
m = SCRM(); x = sine((2, 3, 2, 2), 0.4, 0.37, 1.5)
print(m.spatial_wise(x).flatten(), m.channel_wise(x).flatten())
s = [sine((2, 4, 4, 4), 0.1, 0.21), sine((2, 6, 2, 2), 0.9, 0.13)]
t = [sine((2, 4, 4, 4), 0.3, 0.19), sine((2, 6, 2, 2), 0.2, 0.17, 0.5)]
print('%.9g' % m(s, t).item())                                                   # 1.21952999
print('%.9g' % F.l1_loss(sine((3, 5), 0.1, 0.7), sine((3, 5), 0.5, 0.3)).item())  # 0.859467864
print('%.9g' % t[-1].abs().mean().item())                                         # 0.331198156
*/
