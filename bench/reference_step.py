#!/usr/bin/python3
"""One Qimera training iteration as the reference implementation runs it, in PyTorch.

The side of bench_train_step's comparison that a user would otherwise run: written from
../shared/docs/method.md (sections 1-5), the same network sizes as the C++ iteration (ResNet-20 at
CIFAR size, Qimera's generator with D = 64 and no DM, K = 2, p = 0.4, 4w4a, activation ranges
fixed: the steady state after the observe epochs). Per iteration: G's step (CE + 0.1 BNS through the
frozen P, Adam), then Q's KD step on the same images detached (SGD, Nesterov). Fake quantization is
computed as the reference's AsymmetricQuantFunction computes it (straight-through, weights per output
channel from the current weights at every forward). Python's per-iteration overhead is included, as
a user running the reference pays it. One choice in the reference's favour: P's parameters do not
require gradients, so its backward computes the input gradient only.

Modes:
  reference_step.py --batch 64 --iterations 10          one measurement, printed as JSON
  reference_step.py --batch 64 --serve                  reads a count N per stdin line, answers the
                                                        milliseconds per iteration over N iterations
  reference_step.py --batch 64 --count-flops            multiply-adds of one iteration, as JSON
Needs Debian's python3-torch (bench/setup.sh installs it).
"""
import argparse
import json
import random
import sys
import time

import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F


# ---- fake quantization (method.md section 1) ----
class AsymmetricQuant(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, bits, lo, hi):
        scale = (2 ** bits - 1) / torch.clamp(hi - lo, min=1e-8)
        zero_point = (scale * lo).round() + 2 ** (bits - 1)
        if x.dim() == 4:
            scale, zero_point = scale.view(-1, 1, 1, 1), zero_point.view(-1, 1, 1, 1)
        elif x.dim() == 2:
            scale, zero_point = scale.view(-1, 1), zero_point.view(-1, 1)
        n = 2 ** (bits - 1)
        q = torch.clamp(torch.round(scale * x - zero_point), -n, n - 1)
        return (q + zero_point) / scale

    @staticmethod
    def backward(ctx, grad):
        return grad, None, None, None


class QuantConv2d(nn.Conv2d):
    def forward(self, x):
        w = self.weight.data.contiguous().view(self.out_channels, -1)
        weight = AsymmetricQuant.apply(self.weight, BITS, w.min(dim=1).values, w.max(dim=1).values)
        return F.conv2d(x, weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class QuantLinear(nn.Linear):
    def forward(self, x):
        w = self.weight.data
        weight = AsymmetricQuant.apply(self.weight, BITS, w.min(dim=1).values, w.max(dim=1).values)
        return F.linear(x, weight, self.bias)


class QuantAct(nn.Module):
    """After every ReLU; the range is fixed here (the steady state), as after the observe epochs."""

    def __init__(self):
        super().__init__()
        self.register_buffer("x_min", torch.zeros(1))
        self.register_buffer("x_max", torch.ones(1) * 4.0)

    def forward(self, x):
        return AsymmetricQuant.apply(x, BITS, self.x_min, self.x_max)


BITS = 4
warnings.filterwarnings("ignore", category=UserWarning)  # PyTorch 1.13 deprecation notes


# ---- ResNet-20 (pytorchcv's resnet20_cifar10 layout) ----
def conv_bn(cin, cout, stride, quant):
    conv = (QuantConv2d if quant else nn.Conv2d)(cin, cout, 3, stride, 1, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(cout))


def relu(quant):
    return nn.Sequential(nn.ReLU(), QuantAct()) if quant else nn.ReLU()


class Block(nn.Module):
    def __init__(self, cin, cout, stride, quant):
        super().__init__()
        self.body = nn.Sequential(conv_bn(cin, cout, stride, quant), relu(quant), conv_bn(cout, cout, 1, quant))
        self.identity = None
        if stride != 1 or cin != cout:
            conv = (QuantConv2d if quant else nn.Conv2d)(cin, cout, 1, stride, 0, bias=False)
            self.identity = nn.Sequential(conv, nn.BatchNorm2d(cout))
        self.activ = relu(quant)

    def forward(self, x):
        skip = x if self.identity is None else self.identity(x)
        return self.activ(self.body(x) + skip)


class ResNet20(nn.Module):
    def __init__(self, quant=False, classes=10):
        super().__init__()
        layers = [conv_bn(3, 16, 1, quant), relu(quant)]
        cin = 16
        for stage, width in enumerate((16, 32, 64)):
            for unit in range(3):
                layers.append(Block(cin, width, 2 if (unit == 0 and stage > 0) else 1, quant))
                cin = width
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1))
        self.output = (QuantLinear if quant else nn.Linear)(64, classes)

    def forward(self, x):
        return self.output(self.features(x).flatten(1))


def quantized_copy(teacher):
    q = ResNet20(quant=True)
    q.load_state_dict(teacher.state_dict(), strict=False)
    return q


# ---- Qimera's generator (method.md sections 2-3; no DM, random embeddings) ----
class Generator(nn.Module):
    def __init__(self, classes=10, size=32, channels=3, dim=64):
        super().__init__()
        self.label_emb = nn.Embedding(classes, dim)
        self.embed_normalizer = nn.BatchNorm1d(self.label_emb.weight.T.shape, affine=False,
                                               track_running_stats=False)
        self.init_size = size // 4
        self.l1 = nn.Sequential(nn.Linear(dim, 128 * self.init_size ** 2))
        self.conv_blocks0 = nn.Sequential(nn.BatchNorm2d(128))
        self.conv_blocks1 = nn.Sequential(nn.Conv2d(128, 128, 3, 1, 1), nn.BatchNorm2d(128, 0.8),
                                          nn.LeakyReLU(0.2))
        self.conv_blocks2 = nn.Sequential(nn.Conv2d(128, 64, 3, 1, 1), nn.BatchNorm2d(64, 0.8),
                                          nn.LeakyReLU(0.2), nn.Conv2d(64, channels, 3, 1, 1), nn.Tanh(),
                                          nn.BatchNorm2d(channels, affine=False))

    def forward(self, z, labels, linear=None):
        g = self.embed_normalizer(torch.add(self.label_emb(labels), z).T).T
        if linear is not None:
            g = (g * linear.unsqueeze(2)).sum(dim=1)
        out = self.l1(g).view(z.shape[0], 128, self.init_size, self.init_size)
        img = F.interpolate(self.conv_blocks0(out), scale_factor=2)
        img = F.interpolate(self.conv_blocks1(img), scale_factor=2)
        return self.conv_blocks2(img)


class Iteration:
    """G step then Q step, as the reference trainer's train() body (after warm-up)."""

    def __init__(self, batch, k=2, p=0.4, classes=10, dim=64, T=20.0):
        torch.manual_seed(0)
        random.seed(0)
        self.batch, self.k, self.p, self.classes, self.dim, self.T = batch, k, p, classes, dim, T
        self.teacher = ResNet20().eval()
        for param in self.teacher.parameters():
            param.requires_grad_(False)
        self.student = quantized_copy(self.teacher).eval()
        self.generator = Generator(classes, dim=dim).train()
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=1e-3, betas=(0.5, 0.999))
        self.opt_q = torch.optim.SGD(self.student.parameters(), lr=1e-4, momentum=0.9, nesterov=True,
                                     weight_decay=1e-4)
        self.bns = [m for m in self.teacher.modules() if isinstance(m, nn.BatchNorm2d)]
        self.means, self.vars = [], []
        for bn in self.bns:
            bn.register_forward_hook(self.hook)

    def hook(self, module, inputs, output):
        x = inputs[0]
        self.means.append(x.mean([0, 2, 3]))
        self.vars.append(x.permute(1, 0, 2, 3).contiguous().view([x.size(1), -1]).var(1, unbiased=False))

    def images(self):
        if random.random() < self.p:  # a superposed batch: K embeddings, softmax weights, soft labels
            z = torch.randn(self.batch, self.k, self.dim)
            labels = torch.randint(0, self.classes, (self.batch, self.k))
            weights = torch.softmax(torch.randn(self.batch, self.k), dim=1)
            target = torch.zeros(self.batch, self.classes).scatter_add_(1, labels, weights)
            return self.generator(z, labels, weights), target
        z = torch.randn(self.batch, self.dim)
        labels = torch.randint(0, self.classes, (self.batch,))
        return self.generator(z, labels), F.one_hot(labels, self.classes).float()

    def step(self):
        images, target = self.images()
        self.means.clear()
        self.vars.clear()
        teacher_out = self.teacher(images)
        ce = torch.mean(torch.sum(-target * F.log_softmax(teacher_out, dim=1), dim=1))
        bns = sum(F.mse_loss(m, bn.running_mean) + F.mse_loss(v, bn.running_var)
                  for m, v, bn in zip(self.means, self.vars, self.bns)) / len(self.bns)
        loss_g = ce + 0.1 * bns
        self.opt_g.zero_grad()
        loss_g.backward()
        self.opt_g.step()

        out = self.student(images.detach())
        teacher_out = teacher_out.detach()
        kd = F.kl_div(F.log_softmax(out / self.T, dim=1), F.softmax(teacher_out / self.T, dim=1),
                      reduction="mean") * self.T * self.T
        loss_q = kd + torch.mean(torch.sum(-target * F.log_softmax(out, dim=1), dim=1))
        self.opt_q.zero_grad()
        loss_q.backward()
        self.opt_q.step()

    def ms_per_iteration(self, n):
        start = time.perf_counter()
        for _ in range(n):
            self.step()
        return (time.perf_counter() - start) * 1000.0 / n


def multiply_adds(it):
    """Multiply-adds of one iteration: forward work of every conv / linear layer, times 3 for G and
    Q (forward, input gradient, weight gradient) and 2 for P (forward, input gradient)."""
    counts = {}

    def counter(name):
        def hook(module, inputs, output):
            per_output = module.weight[0].numel()
            counts[name] = counts.get(name, 0) + output.numel() * per_output
        return hook

    handles = []
    for name, model in (("generator", it.generator), ("teacher", it.teacher), ("student", it.student)):
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                handles.append(m.register_forward_hook(counter(name)))
    it.p = 0.0  # the ordinary batch: the same layer sizes as a superposed one
    it.step()
    for h in handles:
        h.remove()
    return {"generator": 3 * counts["generator"], "teacher": 2 * counts["teacher"],
            "student": 3 * counts["student"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: PyTorch's default)")
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--serve", action="store_true")
    ap.add_argument("--count-flops", action="store_true")
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    it = Iteration(a.batch)
    if a.count_flops:
        print(json.dumps({"batch": a.batch, "multiply_adds": multiply_adds(it)}), flush=True)
        return
    for _ in range(3):
        it.step()
    if not a.serve:
        print(json.dumps({"batch": a.batch, "threads": torch.get_num_threads(),
                          "ms_per_iteration": it.ms_per_iteration(a.iterations)}), flush=True)
        return
    print(json.dumps({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        n = int(line)
        if n <= 0:
            break
        print(json.dumps({"ms_per_iteration": it.ms_per_iteration(n)}), flush=True)


if __name__ == "__main__":
    main()
