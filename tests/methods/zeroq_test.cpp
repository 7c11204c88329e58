// ZeroQ's parts against PyTorch: the distillation loss, its start images and the plateau schedule
// (golden values from python3-torch 1.13; the script is at the end of this file).
#include "methods/support.h"
#include "qimera/core/error.h"
#include "qimera/methods/zeroq.h"
#include "qimera/models/zoo.h"
#include "support/test_support.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/optim/adam.h>

namespace qimera::methods {
namespace {

using qimera::testing::sine_tensor;

models::ForwardTrace golden_trace(models::TappedBatchNorm2d& bn) {
  at::NoGradGuard no_grad;
  bn->running_mean.copy_(at::tensor({0.1f, -0.2f}));
  bn->running_var.copy_(at::tensor({0.5f, 2.0f}));
  models::ForwardTrace trace;
  trace.batch_norms.push_back({sine_tensor({4, 2, 3, 3}, 0.7, 0.53, 2.0), bn.get()});
  return trace;
}

TEST(Zeroq, LossMatchesZeroqsOwnLoss) {
  models::TappedBatchNorm2d bn(2);
  const auto trace = golden_trace(bn);
  const auto images = sine_tensor({4, 3, 5, 5}, 0.2, 0.31, 0.05);
  EXPECT_NEAR(zeroq_loss(trace, images).item<double>(), 4.10022449, 1e-5);
  EXPECT_NEAR(zeroq_loss(trace, images, /*batch_statistics=*/true).item<double>(), 3.60188842, 1e-5);
}

TEST(Zeroq, LossIsZeroWhenEveryStatisticMatches) {
  // Per sample, per channel: mean 0 and unbiased std 1 at the input; the BN layer's statistics
  // equal to the targets.
  auto x = at::randn({3, 2, 4, 4});
  const auto flat = x.reshape({3, 2, -1});
  x = ((flat - flat.mean(2, true)) / (flat.var(2, true, true) + 1e-6).sqrt()).reshape({3, 2, 4, 4});
  models::TappedBatchNorm2d bn(2);
  models::ForwardTrace trace;
  trace.batch_norms.push_back({x, bn.get()});  // running mean 0, var 1
  EXPECT_NEAR(zeroq_loss(trace, x).item<double>(), 0.0, 1e-8);
}

TEST(Zeroq, StartImagesAreZeroqsScaledUniformIntegers) {
  at::manual_seed(0);
  const auto x = zeroq_start_images(models::ModelSpec{models::Arch::ResNet20Cifar, 10, 3, 32}, 64, c10::kCPU);
  EXPECT_EQ(x.sizes(), (at::IntArrayRef{64, 3, 32, 32}));
  const auto v = x * 5418.75 + 127.5;  // back to the integers 0..254
  EXPECT_LE((v - v.round()).abs().max().item<double>(), 1e-3);
  EXPECT_NEAR(v.min().item<double>(), 0, 1e-3);
  EXPECT_NEAR(v.max().item<double>(), 254, 1e-3);
  EXPECT_LE(x.abs().max().item<double>(), 0.0236);
}

TEST(Zeroq, PlateauScheduleMatchesPyTorch) {
  auto p = at::zeros({1}).requires_grad_(true);
  torch::optim::Adam adam(std::vector<at::Tensor>{p}, torch::optim::AdamOptions(0.5));
  ReduceLrOnPlateau plateau(adam, 0.1, 3, 1e-4);
  const std::vector<double> losses = {5, 4, 4, 4, 4, 4, 3.9999, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3};
  const std::vector<double> want = {0.5,  0.5,   0.5,   0.5,    0.5,    0.05,   0.05,   0.05,   0.05,
                                    0.05, 0.05,  0.005, 0.005,  0.005,  0.005,  0.0005, 0.0005, 0.0005,
                                    0.0005, 1e-4, 1e-4, 1e-4, 1e-4, 1e-4, 1e-4};
  for (size_t i = 0; i < losses.size(); ++i) {
    plateau.step(losses[i]);
    EXPECT_NEAR(plateau.lr(), want[i], 1e-12) << "step " << i;
  }
}

// A copy of the tiny trained teacher that distillation may use (frozen), and 2 short batches.
models::Classifier frozen_tiny_teacher() {
  auto model = models::clone_model(*support::trained_tiny_teacher(10, 16));
  for (auto& p : model->parameters()) p.set_requires_grad(false);
  return model;
}

ZeroqOptions two_short_batches(int64_t batch_size) {
  ZeroqOptions o;
  o.iterations = 60;
  o.batch_size = batch_size;
  o.batches = 2;
  return o;
}

TEST(Zeroq, DistillationLowersTheLossOnATrainedModel) {
  at::manual_seed(1);
  auto model = frozen_tiny_teacher();
  auto o = two_short_batches(8);
  const auto start = zeroq_start_images(model->spec(), 8, c10::kCPU);
  const double before = zeroq_loss(model->trace(start), start).item<double>();
  const auto images = distill_images(*model, o, c10::kCPU);
  EXPECT_EQ(images.sizes(), (at::IntArrayRef{16, 1, 16, 16}));
  const auto first = images.slice(0, 0, 8);
  EXPECT_LT(zeroq_loss(model->trace(first), first).item<double>(), before / 4);
  o.iterations = 0;
  EXPECT_THROW(distill_images(*model, o, c10::kCPU), Error);
}

// The probe set of qimera check: targets add the teacher's cross-entropy towards them to ZeroQ's
// loss, so the same start and steps end closer to the chosen classes. (On this tiny teacher the
// statistics term, about 110, outweighs it; on the bundled Fashion-MNIST teacher 100% of the
// images end in their class: docs/results.md.)
TEST(Zeroq, TargetsPullTheImagesTowardsTheChosenClasses) {
  auto model = frozen_tiny_teacher();
  const auto o = two_short_batches(10);
  const auto targets = at::arange(20, at::kLong).remainder(10);
  auto cross_entropy = [&](const at::Tensor& images) {
    at::NoGradGuard no_grad;
    return at::cross_entropy_loss(model->forward(images), targets).item<double>();
  };
  at::manual_seed(1);
  const auto steered = distill_probe(*model, o, /*class_balanced=*/true, c10::kCPU);
  at::manual_seed(1);
  const auto plain = distill_probe(*model, o, /*class_balanced=*/false, c10::kCPU);
  ASSERT_TRUE(steered.targets.defined());
  EXPECT_TRUE(steered.targets.equal(targets));  // 0..9, 0..9: two images per class
  EXPECT_FALSE(plain.targets.defined());
  EXPECT_EQ(plain.images.sizes(), (at::IntArrayRef{20, 1, 16, 16}));
  EXPECT_LT(cross_entropy(steered.images), cross_entropy(plain.images) - 0.5);  // 2.57 against 3.30
  EXPECT_THROW(distill_images(*model, o, c10::kCPU, targets.slice(0, 0, 19)), Error);
  EXPECT_THROW(distill_images(*model, o, c10::kCPU, targets.to(at::kInt)), Error);
}

// A run's probe (quantize without a test set) must not change the run: it is drawn from its own
// seed and hands the run's random stream, the teacher's mode and its parameters' flags back as
// they were, so a run with a probe trains exactly as one without.
TEST(Zeroq, ARunsProbeLeavesTheRandomStreamAndTheTeacherAsTheyWere) {
  auto model = models::clone_model(*support::trained_tiny_teacher(10, 16));
  model->train();
  for (const auto& p : model->parameters()) ASSERT_FALSE(p.grad().defined());
  auto o = two_short_batches(10);
  o.iterations = 10;
  at::manual_seed(3);
  const auto expected = at::rand({4});
  at::manual_seed(3);
  const auto probe = run_probe(*model, o, 7, c10::kCPU);
  EXPECT_TRUE(at::rand({4}).equal(expected));
  EXPECT_TRUE(model->is_training());
  for (const auto& p : model->parameters()) {
    EXPECT_TRUE(p.requires_grad());
    EXPECT_FALSE(p.grad().defined());  // no gradient reached the teacher
  }
  EXPECT_EQ(probe.images.sizes(), (at::IntArrayRef{20, 1, 16, 16}));
  // The reference is the teacher's output in eval mode.
  model->eval();
  {
    at::NoGradGuard no_grad;
    EXPECT_TRUE(probe.reference.allclose(model->forward(probe.images)));
  }
  // Its own seed: the same probe whatever the stream's state, another one for another seed.
  at::manual_seed(11);
  EXPECT_TRUE(run_probe(*model, o, 7, c10::kCPU).images.equal(probe.images));
  EXPECT_FALSE(run_probe(*model, o, 8, c10::kCPU).images.equal(probe.images));
}

}  // namespace
}  // namespace qimera::methods

/* Golden values (python3 with PyTorch 1.13):

import math, torch
def sine(shape, phase=0.3, step=0.007, amp=1.0):
    n = math.prod(shape); j = torch.arange(n, dtype=torch.float64)
    return (amp * torch.sin(phase + step * j)).float().reshape(shape)
def own_loss(A, B):  # ZeroQ's
    return (A - B).norm()**2 / B.size(0)
eps = 1e-6
x = sine((4, 3, 5, 5), 0.2, 0.31, 0.05); y = sine((4, 2, 3, 3), 0.7, 0.53, 2.0)
rm = torch.tensor([0.1, -0.2]); rv = torch.tensor([0.5, 2.0])
bn_mean, bn_std = rm, torch.sqrt(rv + eps)
t = y.view(4, 2, -1); u = x.view(4, 3, -1)
loss = (own_loss(bn_mean, t.mean(2)) + own_loss(bn_std, torch.sqrt(t.var(2) + eps))
        + own_loss(torch.zeros(1, 3), u.mean(2)) + own_loss(torch.ones(1, 3), torch.sqrt(u.var(2) + eps)))
print('%.9g' % loss.item())   # 4.10022449
def bstat(z):
    f = z.transpose(0, 1).reshape(z.size(1), -1)
    return f.mean(1).unsqueeze(0), torch.sqrt(f.var(1) + eps).unsqueeze(0)
m, s = bstat(y); mi, si = bstat(x)
print('%.9g' % (own_loss(bn_mean, m) + own_loss(bn_std, s) + own_loss(torch.zeros(1, 3), mi)
                + own_loss(torch.ones(1, 3), si)).item())   # 3.60188842
p = torch.zeros(1, requires_grad=True); opt = torch.optim.Adam([p], lr=0.5)
sch = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, min_lr=1e-4, patience=3)
for v in [5, 4, 4, 4, 4, 4, 3.9999, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3]:
    sch.step(v); print(opt.param_groups[0]['lr'])
*/
