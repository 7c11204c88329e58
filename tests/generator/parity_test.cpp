// Parity with PyTorch: the reference generator (Qimera's main.py, with the conditional batch norm's
// mixing as method.md describes it) re-typed in Python, with formula-filled weights and inputs; the
// golden numbers below come from PyTorch 1.13 (the script is at the end of this file).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "qimera/core/error.h"
#include "qimera/generator/architecture.h"
#include "qimera/generator/generator.h"
#include "support/test_support.h"

namespace qimera::generator {
namespace {
using qimera::testing::sine_tensor;

struct Golden {
  bool conditional_bn;
  int64_t disentangle_dim;  // 0: no DM
  bool superposed;
  std::vector<float> embed_rows01;  // the body input's first two rows
  double abs_sum;                   // sum |image|
  double dot;                       // sum image * w, w = sine_tensor({4, 2, 8, 8}, 0.2, 0.013)
  std::vector<float> first;         // the first six image values
  std::vector<float> running_mean;  // conv_blocks1.1's running mean after the pass, first four
};

// clang-format off
const std::vector<Golden> kGolden = {
    {false, 0, false, {-1.82150447, -0.777107656, 0.131318405, 0.747387648, 0.966343522, 0.753561854, -1.29603136, -0.969468892, -0.422949076, 0.249644116, 0.9321509, 1.50665414}, 343.434742, -6.04831827, {0.609839499, -1.21739364, -0.986279964, -0.973523378, -0.896700501, -0.784294844}, {0.0523621403, 0.0405067913, 0.024544891, 0.00989390723}},
    {false, 0, true, {0.400122464, 0.113669753, -0.246496484, -0.613378167, -0.918815017, -1.10552371, -1.6515491, -1.3279835, -0.789847136, -0.128780827, 0.541831791, 1.10689139}, 339.480486, -1.8669412, {0.746189892, -0.920534372, -0.612165451, -0.575978518, -0.57368046, -0.604712903}, {0.0521791093, 0.0406601541, 0.0245240554, 0.00976823922}},
    {false, 5, false, {-0.561289072, 0.577219725, -1.09851527, 1.24118471, -0.22954914, 1.86986315, -2.79744101, 2.03691196, -0.556112647, -0.400293559}, 355.34465, -24.9027914, {0.829688728, -0.803167224, -0.599571228, -0.703825235, -0.816500425, -0.890530586}, {0.051951576, 0.0397917777, 0.0259058923, 0.00879977364}},
    {false, 5, true, {-2.46085596, 0.532338619, 0.875084341, -1.96943092, 3.09283471, 1.94357741, -2.41213727, 1.32763064, 0.228559375, -0.985346437}, 365.308609, -13.698611, {0.939253092, -0.680321515, -0.632804751, -0.98144716, -1.33489215, -1.55022681}, {0.0533904135, 0.038391307, 0.0263286568, 0.00963827502}},
    {true, 0, false, {-1.82150447, -0.777107656, 0.131318405, 0.747387648, 0.966343522, 0.753561854, -1.29603136, -0.969468892, -0.422949076, 0.249644116, 0.9321509, 1.50665414}, 417.788288, 147.30684, {-0.65068078, -0.545598149, -0.323152274, 0.0550559312, 0.441728204, 0.548766255}, {0.0479922928, 0.0432948433, 0.0252086464, 0.00622354029}},
    {true, 0, true, {0.400122464, 0.113669753, -0.246496484, -0.613378167, -0.918815017, -1.10552371, -1.6515491, -1.3279835, -0.789847136, -0.128780827, 0.541831791, 1.10689139}, 386.164024, 40.0486429, {0.00709871668, 0.257596344, 0.0810921267, -0.169969857, -0.253331304, -0.504258513}, {0.0491255783, 0.0417369939, 0.0261461828, 0.00653515849}},
    {true, 5, false, {-0.561289072, 0.577219725, -1.09851527, 1.24118471, -0.22954914, 1.86986315, -2.79744101, 2.03691196, -0.556112647, -0.400293559}, 416.392254, -62.1321777, {0.0351748839, 0.0902777687, 0.0171318762, -0.161692515, -0.41149199, -0.669247627}, {0.0472553186, 0.0435153544, 0.0256525017, 0.00541302469}},
    {true, 5, true, {-2.46085596, 0.532338619, 0.875084341, -1.96943092, 3.09283471, 1.94357741, -2.41213727, 1.32763064, 0.228559375, -0.985346437}, 403.223841, -12.2032557, {-0.870744646, -0.482761592, -0.406469345, -0.383289695, -0.601769388, -1.03898394}, {0.0489947312, 0.0421205945, 0.0257671177, 0.00665542996}},
};
// clang-format on

constexpr int64_t C = 3, S = 8, CH = 2, D = 6;

GeneratorOptions options_for(bool conditional_bn, int64_t d) {
  GeneratorOptions o(C, S, CH, D);
  o.conditional_bn = conditional_bn;
  o.disentangle = d > 0;
  if (d > 0) o.disentangle_dim = d;
  return o;
}

// Parameters in sorted-name order, k = position, j = element index (the script's `fill`).
void fill(GeneratorImpl& g) {
  auto params = g.named_parameters();
  std::vector<std::string> names;
  for (const auto& item : params) names.push_back(item.key());
  std::sort(names.begin(), names.end());
  at::NoGradGuard no_grad;
  for (size_t k = 0; k < names.size(); ++k) {
    auto& p = params[names[k]];
    const auto j = at::arange(p.numel(), at::kDouble);
    const auto s = at::sin(1.0 + 0.37 * static_cast<double>(k) + 12.9898 * j);
    const double fan_in = static_cast<double>(p.numel() / p.size(0));
    const bool table_scale =
        names[k].size() >= 14 && names[k].compare(names[k].size() - 14, 14, "weights.weight") == 0;
    const auto v = table_scale ? 1 + 0.1 * s : (p.dim() == 1 ? 0.5 * s : std::sqrt(3 / fan_in) * s);
    p.copy_(v.view(p.sizes()).to(at::kFloat));
  }
}

LatentBatch golden_batch(bool superposed) {
  LatentBatch b;
  if (superposed) {
    b.labels = at::tensor(std::vector<int64_t>{0, 1, 2, 2, 1, 0, 2, 1}).view({4, 2});
    b.noise = sine_tensor({4, 2, D}, 0.5, 0.011);
    b.mix = at::softmax(sine_tensor({4, 2}, 0.1, 0.9, 2.0), 1);
  } else {
    b.labels = at::tensor(std::vector<int64_t>{0, 2, 1, 2});
    b.noise = sine_tensor({4, D});
  }
  return b;
}

at::Tensor floats(const std::vector<float>& v) { return at::tensor(v); }

TEST(GeneratorParity, MatchesPyTorchReference) {
  const auto w = sine_tensor({4, CH, S, S}, 0.2, 0.013).to(at::kDouble);
  for (const auto& c : kGolden) {
    SCOPED_TRACE(::testing::Message() << "conditional_bn " << c.conditional_bn << ", d "
                                      << c.disentangle_dim << ", superposed " << c.superposed);
    Generator g(options_for(c.conditional_bn, c.disentangle_dim));
    fill(*g);
    const auto batch = golden_batch(c.superposed);
    const auto embed = g->embed(batch);
    EXPECT_TRUE(at::allclose(embed.slice(0, 0, 2).flatten(), floats(c.embed_rows01), 1e-5, 1e-5))
        << embed.slice(0, 0, 2);
    const auto images = g->forward(batch).to(at::kDouble);
    EXPECT_NEAR(images.abs().sum().item<double>(), c.abs_sum, 1e-5 * c.abs_sum);
    EXPECT_NEAR((images * w).sum().item<double>(), c.dot, 1e-3);
    EXPECT_TRUE(
        at::allclose(images.flatten().slice(0, 0, 6).to(at::kFloat), floats(c.first), 1e-4, 1e-5))
        << images.flatten().slice(0, 0, 6);
    const auto rm = g->named_buffers()[c.conditional_bn ? "conv_blocks1_1.running_mean"
                                                        : "conv_blocks1.1.running_mean"];
    EXPECT_TRUE(at::allclose(rm.slice(0, 0, 4), floats(c.running_mean), 1e-4, 1e-6))
        << rm.slice(0, 0, 4);
  }
}

std::set<std::string> state_keys(GeneratorImpl& g) {
  std::set<std::string> keys;
  for (const auto& item : g.named_parameters()) keys.insert(item.key());
  for (const auto& item : g.named_buffers()) keys.insert(item.key());
  return keys;
}

TEST(GeneratorParity, StateDictKeysMatchReference) {
  // sorted(Generator(...).state_dict().keys()) of the reference, plain body with DM.
  const std::set<std::string> plain = {"conv_blocks0.0.bias",
                                       "conv_blocks0.0.num_batches_tracked",
                                       "conv_blocks0.0.running_mean",
                                       "conv_blocks0.0.running_var",
                                       "conv_blocks0.0.weight",
                                       "conv_blocks1.0.bias",
                                       "conv_blocks1.0.weight",
                                       "conv_blocks1.1.bias",
                                       "conv_blocks1.1.num_batches_tracked",
                                       "conv_blocks1.1.running_mean",
                                       "conv_blocks1.1.running_var",
                                       "conv_blocks1.1.weight",
                                       "conv_blocks2.0.bias",
                                       "conv_blocks2.0.weight",
                                       "conv_blocks2.1.bias",
                                       "conv_blocks2.1.num_batches_tracked",
                                       "conv_blocks2.1.running_mean",
                                       "conv_blocks2.1.running_var",
                                       "conv_blocks2.1.weight",
                                       "conv_blocks2.3.bias",
                                       "conv_blocks2.3.weight",
                                       "conv_blocks2.5.num_batches_tracked",
                                       "conv_blocks2.5.running_mean",
                                       "conv_blocks2.5.running_var",
                                       "fc_reducer.bias",
                                       "fc_reducer.weight",
                                       "l1.0.bias",
                                       "l1.0.weight",
                                       "label_emb.weight"};
  // Generator_imagenet, without DM.
  const std::set<std::string> conditional = {"conv_blocks0_0.biases.weight",
                                             "conv_blocks0_0.num_batches_tracked",
                                             "conv_blocks0_0.running_mean",
                                             "conv_blocks0_0.running_var",
                                             "conv_blocks0_0.weights.weight",
                                             "conv_blocks1_0.bias",
                                             "conv_blocks1_0.weight",
                                             "conv_blocks1_1.biases.weight",
                                             "conv_blocks1_1.num_batches_tracked",
                                             "conv_blocks1_1.running_mean",
                                             "conv_blocks1_1.running_var",
                                             "conv_blocks1_1.weights.weight",
                                             "conv_blocks2_0.bias",
                                             "conv_blocks2_0.weight",
                                             "conv_blocks2_1.biases.weight",
                                             "conv_blocks2_1.num_batches_tracked",
                                             "conv_blocks2_1.running_mean",
                                             "conv_blocks2_1.running_var",
                                             "conv_blocks2_1.weights.weight",
                                             "conv_blocks2_3.bias",
                                             "conv_blocks2_3.weight",
                                             "conv_blocks2_5.num_batches_tracked",
                                             "conv_blocks2_5.running_mean",
                                             "conv_blocks2_5.running_var",
                                             "l1.0.bias",
                                             "l1.0.weight",
                                             "label_emb.weight"};
  Generator a(options_for(false, 5));
  EXPECT_EQ(state_keys(*a), plain);
  Generator b(options_for(true, 0));
  EXPECT_EQ(state_keys(*b), conditional);
}

// GDFQ's CIFAR generator as published (noise times the class embedding) and ZAQ's (noise only,
// every BN eps 1e-5), re-typed in PyTorch from their repositories (script at the end of this file).
struct OtherGolden {
  LatentInput input;
  int64_t latent_dim;
  double body_eps;
  double abs_sum, dot;
  std::vector<float> first, running_mean;
};

void expect_matches(const OtherGolden& c, const LatentBatch& batch) {
  GeneratorOptions o(C, S, CH, c.latent_dim);
  o.input = c.input;
  o.body_eps = c.body_eps;
  Generator g(o);
  fill(*g);
  const auto w = sine_tensor({4, CH, S, S}, 0.2, 0.013).to(at::kDouble);
  const auto images = g->forward(batch).to(at::kDouble);
  EXPECT_NEAR(images.abs().sum().item<double>(), c.abs_sum, 1e-5 * c.abs_sum);
  EXPECT_NEAR((images * w).sum().item<double>(), c.dot, 1e-3);
  EXPECT_TRUE(at::allclose(images.flatten().slice(0, 0, 6).to(at::kFloat), floats(c.first), 1e-4, 1e-5))
      << images.flatten().slice(0, 0, 6);
  EXPECT_TRUE(at::allclose(g->named_buffers()["conv_blocks1.1.running_mean"].slice(0, 0, 4),
                           floats(c.running_mean), 1e-4, 1e-6));
}

TEST(GeneratorParity, GdfqsPublishedGeneratorMatchesPyTorch) {
  LatentBatch b;
  b.labels = at::tensor(std::vector<int64_t>{0, 2, 1, 2});
  b.noise = sine_tensor({4, 6});
  expect_matches({LatentInput::Product, 6, 0.8, 346.382145, -11.3574318,
                  {0.871715307, -0.858543336, -0.644883215, -0.730710924, -0.804087281, -0.832308948},
                  {0.0508893616, 0.0413864106, 0.0248484053, 0.00861082878}},
                 b);
}

TEST(GeneratorParity, ZaqsGeneratorMatchesPyTorch) {
  LatentBatch b;
  b.noise = sine_tensor({4, 5}, 0.5, 0.011);
  expect_matches({LatentInput::Noise, 5, 1e-5, 402.684901, 7.66450606,
                  {-0.463593096, -0.905720472, -0.692400634, -0.397001415, 0.0688690618, 0.553667963},
                  {0.0507694855, 0.0421221592, 0.0239902791, 0.00901576411}},
                 b);
}

TEST(GeneratorParity, RegistryBuildsEachPapersGenerator) {
  const GeneratorTarget cifar{10, 32, 3, 64, false};
  const auto gdfq = generator_options(GeneratorArch::Gdfq, cifar);
  EXPECT_EQ(gdfq.input, LatentInput::Product);
  EXPECT_EQ(gdfq.latent_dim, 100);
  EXPECT_EQ(gdfq.body_eps, 0.8);
  const auto imagenet = generator_options(GeneratorArch::Gdfq, {1000, 224, 3, 512, true});
  EXPECT_EQ(imagenet.input, LatentInput::Noise);  // labels only through conditional BN
  EXPECT_TRUE(imagenet.uses_labels());
  const auto zaq = generator_options(GeneratorArch::Zaq, cifar);
  EXPECT_EQ(zaq.input, LatentInput::Noise);
  EXPECT_EQ(zaq.latent_dim, 256);
  EXPECT_EQ(zaq.body_eps, 1e-5);
  EXPECT_FALSE(zaq.uses_labels());
  const auto qimera = generator_options(GeneratorArch::Qimera, cifar);
  EXPECT_EQ(qimera.latent_dim, 64);
  EXPECT_EQ(qimera.input, LatentInput::Embedding);
  // GDFQ's and ZAQ's state dicts: Qimera's plain keys without fc_reducer (and label_emb for ZAQ).
  Generator g(gdfq), z(zaq);
  EXPECT_TRUE(state_keys(*g).count("label_emb.weight"));
  EXPECT_FALSE(state_keys(*g).count("fc_reducer.weight"));
  EXPECT_FALSE(state_keys(*z).count("label_emb.weight"));
  EXPECT_EQ(state_keys(*z).size(), state_keys(*g).size() - 1);
  // AutoReCon is listed, with the reason it cannot be built.
  const auto message = qimera::testing::error_of([&] { parse_generator_arch("autorecon"); });
  EXPECT_NE(message.find("not published"), std::string::npos) << message;
  EXPECT_THROW(generator_options(GeneratorArch::AutoReCon, cifar), Error);
  // A label-free generator takes no labels and samples noise only.
  const auto batch = z->sample(3, {2, 0.0}, at::kCPU);
  EXPECT_FALSE(batch.labels.defined());
  EXPECT_EQ(batch.noise.sizes(), (at::IntArrayRef{3, 256}));
  EXPECT_THROW(z->sample(3, {2, 0.4}, at::kCPU), Error);
}

}  // namespace
}  // namespace qimera::generator

// clang-format off
/* The script that produced kGolden (python3 with PyTorch 1.13):

# Golden values for tests/generator/parity_test.cpp: the reference generator (Qimera main.py,
# re-typed; conditional BN with mixing as method.md describes) with formula-filled weights.
import math, torch, torch.nn as nn, torch.nn.functional as F

class CCBN(nn.BatchNorm2d):  # CategoricalConditionalBatchNorm2d, mixing = mean_k(lambda_k * table[y_k])
    def __init__(self, num_classes, num_features, eps=1e-5):
        super().__init__(num_features, eps, 0.1, affine=False, track_running_stats=True)
        self.weights = nn.Embedding(num_classes, num_features); nn.init.ones_(self.weights.weight)
        self.biases = nn.Embedding(num_classes, num_features); nn.init.zeros_(self.biases.weight)
    def forward(self, x, c, linear=None):
        out = super().forward(x)
        w, b = self.weights(c), self.biases(c)
        if linear is not None:
            w = (w * linear.unsqueeze(2)).mean(1); b = (b * linear.unsqueeze(2)).mean(1)
        return w[:, :, None, None] * out + b[:, :, None, None]

class Gen(nn.Module):
    def __init__(self, C, S, ch, D, d, cond):
        super().__init__()
        self.cond = cond
        self.label_emb = nn.Embedding(C, D)
        self.embed_normalizer = nn.BatchNorm1d(self.label_emb.weight.T.shape, affine=False, track_running_stats=False)
        if d: self.fc_reducer = nn.Linear(D, d)
        self.init_size = S // 4
        self.l1 = nn.Sequential(nn.Linear(d or D, 128 * self.init_size ** 2))
        if not cond:
            self.conv_blocks0 = nn.Sequential(nn.BatchNorm2d(128))
            self.conv_blocks1 = nn.Sequential(nn.Conv2d(128, 128, 3, 1, 1), nn.BatchNorm2d(128, 0.8), nn.LeakyReLU(0.2))
            self.conv_blocks2 = nn.Sequential(nn.Conv2d(128, 64, 3, 1, 1), nn.BatchNorm2d(64, 0.8), nn.LeakyReLU(0.2),
                                              nn.Conv2d(64, ch, 3, 1, 1), nn.Tanh(), nn.BatchNorm2d(ch, affine=False))
        else:
            self.conv_blocks0_0 = CCBN(C, 128)
            self.conv_blocks1_0 = nn.Conv2d(128, 128, 3, 1, 1); self.conv_blocks1_1 = CCBN(C, 128, 0.8)
            self.conv_blocks2_0 = nn.Conv2d(128, 64, 3, 1, 1); self.conv_blocks2_1 = CCBN(C, 64, 0.8)
            self.conv_blocks2_3 = nn.Conv2d(64, ch, 3, 1, 1); self.conv_blocks2_5 = nn.BatchNorm2d(ch, affine=False)
    def embed(self, z, labels, linear=None):
        g = self.embed_normalizer(torch.add(self.label_emb(labels), z).T).T
        if hasattr(self, 'fc_reducer'): g = self.fc_reducer(g)
        if linear is not None: g = (g * linear.unsqueeze(2)).sum(dim=1)
        return g
    def forward(self, z, labels, linear=None):
        out = self.l1(self.embed(z, labels, linear))
        out = out.view(out.shape[0], 128, self.init_size, self.init_size)
        if not self.cond:
            img = F.interpolate(self.conv_blocks0(out), scale_factor=2)
            img = F.interpolate(self.conv_blocks1(img), scale_factor=2)
            return self.conv_blocks2(img)
        img = F.interpolate(self.conv_blocks0_0(out, labels, linear), scale_factor=2)
        img = F.leaky_relu(self.conv_blocks1_1(self.conv_blocks1_0(img), labels, linear), 0.2)
        img = F.interpolate(img, scale_factor=2)
        img = F.leaky_relu(self.conv_blocks2_1(self.conv_blocks2_0(img), labels, linear), 0.2)
        return self.conv_blocks2_5(torch.tanh(self.conv_blocks2_3(img)))

def fill(model):  # parameters in sorted-name order, k = position, j = element index
    with torch.no_grad():
        for k, (name, p) in enumerate(sorted(model.named_parameters())):
            j = torch.arange(p.numel(), dtype=torch.float64)
            s = torch.sin(1.0 + 0.37 * k + 12.9898 * j)
            fan_in = p.numel() // p.shape[0]
            v = (1 + 0.1 * s) if name.endswith('weights.weight') else (0.5 * s if p.dim() == 1 else math.sqrt(3 / fan_in) * s)
            p.copy_(v.reshape(p.shape).float())

def sine(shape, phase=0.3, step=0.007, amp=1.0):
    n = math.prod(shape); j = torch.arange(n, dtype=torch.float64)
    return (amp * torch.sin(phase + step * j)).float().reshape(shape)

def fmt(t): return '{' + ', '.join('%.9g' % v for v in t.flatten().tolist()) + '}'

C, S, CH, D = 3, 8, 2, 6
labels_o = torch.tensor([0, 2, 1, 2]); noise_o = sine((4, D))
labels_s = torch.tensor([[0, 1], [2, 2], [1, 0], [2, 1]]); noise_s = sine((4, 2, D), 0.5, 0.011)
mix = torch.softmax(sine((4, 2), 0.1, 0.9, 2.0), 1)
w = sine((4, CH, S, S), 0.2, 0.013)
for cond in (False, True):
    for d in (0, 5):
        for sup in (False, True):
            g = Gen(C, S, CH, D, d, cond); fill(g); g.train()
            args = (noise_s, labels_s, mix) if sup else (noise_o, labels_o)
            e = g.embed(*args); img = g(*args).double()
            rm = g.conv_blocks1[1].running_mean if not cond else g.conv_blocks1_1.running_mean
            print('    {%s, %d, %s, %s, %.9g, %.9g, %s, %s},' % (str(cond).lower(), d, str(sup).lower(), fmt(e[:2]),
                  img.abs().sum(), (img * w.double()).sum(), fmt(img.flatten()[:6]), fmt(rm[:4])))


The GDFQ and ZAQ goldens (same fill, sine and fmt):

class GdfqGen(nn.Module):  # xushoukai/GDFQ, CIFAR generator
    def __init__(self, C, S, ch, D):
        super().__init__()
        self.init_size = S // 4
        self.label_emb = nn.Embedding(C, D)
        self.l1 = nn.Sequential(nn.Linear(D, 128 * self.init_size ** 2))
        self.conv_blocks0 = nn.Sequential(nn.BatchNorm2d(128))
        self.conv_blocks1 = nn.Sequential(nn.Conv2d(128, 128, 3, 1, 1), nn.BatchNorm2d(128, 0.8), nn.LeakyReLU(0.2))
        self.conv_blocks2 = nn.Sequential(nn.Conv2d(128, 64, 3, 1, 1), nn.BatchNorm2d(64, 0.8), nn.LeakyReLU(0.2),
                                          nn.Conv2d(64, ch, 3, 1, 1), nn.Tanh(), nn.BatchNorm2d(ch, affine=False))
    def forward(self, z, labels):
        out = self.l1(torch.mul(self.label_emb(labels), z))
        out = out.view(out.shape[0], 128, self.init_size, self.init_size)
        img = F.interpolate(self.conv_blocks0(out), scale_factor=2)
        img = F.interpolate(self.conv_blocks1(img), scale_factor=2)
        return self.conv_blocks2(img)
class ZaqGen(nn.Module):  # FLHonker/ZAQ-code network/gan.py
    def __init__(self, nz, ch, S, ngf=64):
        super().__init__()
        self.init_size = S // 4
        self.l1 = nn.Sequential(nn.Linear(nz, ngf * 2 * self.init_size ** 2))
        self.conv_blocks0 = nn.Sequential(nn.BatchNorm2d(ngf * 2))
        self.conv_blocks1 = nn.Sequential(nn.Conv2d(ngf * 2, ngf * 2, 3, 1, 1), nn.BatchNorm2d(ngf * 2), nn.LeakyReLU(0.2))
        self.conv_blocks2 = nn.Sequential(nn.Conv2d(ngf * 2, ngf, 3, 1, 1), nn.BatchNorm2d(ngf), nn.LeakyReLU(0.2),
                                          nn.Conv2d(ngf, ch, 3, 1, 1), nn.Tanh(), nn.BatchNorm2d(ch, affine=False))
    def forward(self, z):
        out = self.l1(z.view(z.shape[0], -1)).view(z.shape[0], -1, self.init_size, self.init_size)
        img = F.interpolate(self.conv_blocks0(out), scale_factor=2)
        img = F.interpolate(self.conv_blocks1(img), scale_factor=2)
        return self.conv_blocks2(img)
w = sine((4, CH, S, S), 0.2, 0.013).double()
g = GdfqGen(C, S, CH, 6); fill(g); g.train()
img = g(sine((4, 6)), torch.tensor([0, 2, 1, 2])).double()
print(img.abs().sum(), (img * w).sum(), fmt(img.flatten()[:6]), fmt(g.conv_blocks1[1].running_mean[:4]))
z = ZaqGen(5, CH, S); fill(z); z.train()
img = z(sine((4, 5), 0.5, 0.011)).double()
print(img.abs().sum(), (img * w).sum(), fmt(img.flatten()[:6]), fmt(z.conv_blocks1[1].running_mean[:4]))
*/
