// Cost of one data-free training iteration (Qimera, ResNet-20 teacher, 4w4a) against the bare
// network work it contains, measured in the same run:
//   bare = generator forward+backward + float ResNet-20 forward with input-gradient backward
//          + float ResNet-20 training step (forward, backward, SGD step)
//   overhead ratio = iteration / bare (target <= 1.15: orchestration, fake quantization, BN
//          statistics and losses cost at most 15%)
// The timed iterations run without any host synchronisation; the per-phase breakdown is a
// separate pass that synchronises after every phase.
//
// The same iteration as the reference implementation runs it in PyTorch (bench/reference_step.py,
// Debian's python3-torch, the same thread count) is timed in the same rounds, interleaved with ours;
// ours / PyTorch is reported per round (targets: float32 <= 0.75, bf16 <= 0.4), with the achieved
// GFLOP/s of both against the CPU's float32 peak.
//
// Machines here are shared and noisy: every quantity is measured in `rounds` interleaved rounds and
// the median is reported.
//
// Flags: bench_train_step --help.
#include "pytorch_reference.h"
#include "qimera/core/runtime.h"
#include "qimera/core/table.h"
#include "qimera/generator/latents.h"
#include "qimera/methods/gdfq_family.h"
#include "qimera/methods/losses.h"
#include "qimera/models/zoo.h"

#include <ATen/ATen.h>
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/cuda.h>
#include <torch/optim/sgd.h>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#ifdef QIMERA_BENCH_CUDA_MEMORY  // set by CMake when LibTorch was built with CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace {

using Clock = std::chrono::steady_clock;

struct Settings {
  std::string device = "auto";
  int threads = 0;
  int iterations = 10;
  int rounds = 5;  // each measurement is repeated, interleaved, and the median reported
  std::vector<int64_t> batch_sizes = {64, 200};
  std::string python = "/usr/bin/python3";
  std::string reference = QIMERA_SOURCE_DIR "/bench/reference_step.py";
};

Settings parse(int argc, char** argv) {
  Settings s;
  CLI::App app("Milliseconds per data-free training iteration (Qimera, ResNet-20, 4w4a) against the "
               "bare network work it contains, with a per-phase breakdown and peak memory");
  app.add_option("--device", s.device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--threads", s.threads, "CPU threads for LibTorch (0: one per core)")
      ->capture_default_str();
  app.add_option("--iterations", s.iterations, "Timed iterations per measurement")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--rounds", s.rounds, "Interleaved repetitions of every measurement (median reported)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--batch-sizes", s.batch_sizes, "Synthetic batch sizes, comma separated")
      ->delimiter(',')
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--python", s.python, "Python interpreter with PyTorch for the reference side")
      ->capture_default_str();
  app.add_option("--reference", s.reference,
                 "The PyTorch reference iteration (empty: do not run it; CPU only)")
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e));
  }
  return s;
}

void sync(const c10::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

// Milliseconds per call of `body`, over `n` calls after 3 unmeasured ones; one sync at each end.
template <typename Body>
double time_ms(const c10::Device& device, int n, Body&& body) {
  for (int i = 0; i < 3; ++i) body();
  sync(device);
  const auto start = Clock::now();
  for (int i = 0; i < n; ++i) body();
  sync(device);
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count() / n;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

std::string peak_memory(const c10::Device& device) {
#ifdef QIMERA_BENCH_CUDA_MEMORY
  if (device.is_cuda()) {
    const auto index = device.has_index() ? device.index() : c10::DeviceIndex(0);
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(index);
    return fmt::format("{:.0f} MiB peak allocated on {}",
                       stats.allocated_bytes[0].peak / 1048576.0, device.str());
  }
#endif
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return fmt::format("{:.0f} MiB peak resident (process)", usage.ru_maxrss / 1024.0);
}

std::string gflops(double flop, double ms, const std::optional<qimera::bench::Peak>& peak) {
  const double rate = flop / (ms * 1e6);
  return peak ? fmt::format("{:.1f} ({:.0f}% of peak)", rate, 100.0 * rate / peak->gflops)
              : fmt::format("{:.1f}", rate);
}

using Variants = std::vector<std::pair<std::string, std::vector<double>>>;

void print_against_pytorch(const Variants& ours, const std::vector<double>& pytorch,
                           const std::optional<qimera::bench::MultiplyAdds>& multiply_adds,
                           int64_t batch, const std::string& version) {
  const auto peak = qimera::bench::float32_peak(at::get_num_threads());
  const double flop = multiply_adds ? 2.0 * multiply_adds->total() : 0.0;
  auto rate = [&](double ms) { return multiply_adds ? gflops(flop, ms, peak) : std::string("-"); };
  qimera::Table table({fmt::format("batch {}", batch), "ms per iteration (median)", "GFLOP/s",
                       "/ PyTorch: median of rounds (range)"});
  for (const auto& [name, times] : ours) {
    std::vector<double> ratios;
    for (size_t i = 0; i < times.size(); ++i) ratios.push_back(times[i] / pytorch[i]);
    table.add_row({name, fmt::format("{:.1f}", median(times)), rate(median(times)),
                   fmt::format("{:.3f} ({:.3f} to {:.3f})", median(ratios),
                               *std::min_element(ratios.begin(), ratios.end()),
                               *std::max_element(ratios.begin(), ratios.end()))});
  }
  table.add_row({"PyTorch " + version + " (reference_step.py)", fmt::format("{:.1f}", median(pytorch)),
                 rate(median(pytorch)), "1"});
  fmt::print("{}{} interleaved rounds; targets: float32 <= 0.75, bf16 <= 0.4 (GFLOP/s of a bf16 row: "
             "the same float32 work per second)\n",
             table.render(), pytorch.size());
  if (multiply_adds) {
    fmt::print("{:.1f} GFLOP per iteration (generator {:.1f}, teacher {:.1f}, Q {:.1f}: forward, and "
               "backward counted as 2x forward for G and Q, 1x for P's input gradient); float32 "
               "peak {}\n\n",
               flop / 1e9, 2 * multiply_adds->generator / 1e9, 2 * multiply_adds->teacher / 1e9,
               2 * multiply_adds->student / 1e9,
               peak ? fmt::format("{:.0f} GFLOP/s ({})", peak->gflops, peak->how) : std::string("unknown"));
  }
}

void run(const Settings& s, int64_t batch, const c10::Device& device) {
  using namespace qimera;
  at::manual_seed(0);
  auto teacher = models::build_model(models::preset_spec("resnet20_cifar10"));
  teacher->to(device);
  teacher->eval();
  methods::GdfqOptions o(generator::GeneratorArch::Qimera, {generator::GeneratorArch::Qimera});
  o.schedule.batch_size = batch;
  o.schedule.warmup_epochs = 0;
  o.schedule.observe_epochs = 1;
  methods::QimeraAdditions additions;
  additions.superposition = {2, 0.4};
  // The steady state: ranges observed on a few batches, then fixed, Q training.
  auto steady_trainer = [&](const std::string& memory_format, const std::string& precision) {
    o.compute.memory_format = memory_format;
    o.compute.precision = precision;
    auto t = methods::make_gdfq_family_trainer(o, &additions, nullptr, models::clone_model(*teacher), device);
    methods::MetricSums sums;
    t->begin_epoch(0, 1.0);
    for (int i = 0; i < 3; ++i) t->iteration(0, sums);
    t->end_epoch(0);
    t->begin_epoch(1, 1.0);
    return t;
  };
  auto trainer_ptr = steady_trainer("contiguous", "fp32");
  auto& trainer = *trainer_ptr;
  auto channels_last = steady_trainer("channels-last", "fp32");
  auto bf16 = steady_trainer("channels-last", "bf16");
  auto bf16_generator = steady_trainer("channels-last", "bf16-generator");
  methods::MetricSums metrics;

  // Per-phase breakdown: synchronise and read the clock at every phase boundary.
  std::map<std::string, double> phases;
  std::vector<std::string> order;
  auto breakdown = [&] {
    for (int i = 0; i < s.iterations; ++i) {
      sync(device);
      auto last = Clock::now();
      trainer.iteration(1, metrics, [&](const char* phase) {
        sync(device);
        const auto now = Clock::now();
        if (!phases.count(phase)) order.push_back(phase);
        phases[phase] += std::chrono::duration<double, std::milli>(now - last).count();
        last = now;
      });
    }
  };

  // The bare network work of one iteration, with the same modules and sizes.
  auto generator = trainer.generator();
  auto student = models::clone_model(*teacher);
  for (auto& p : student->parameters()) p.set_requires_grad(true);
  torch::optim::SGD sgd(student->parameters(),
                        torch::optim::SGDOptions(1e-4).momentum(0.9).nesterov(true).weight_decay(1e-4));
  const auto x = at::randn({batch, 3, 32, 32}, at::TensorOptions(device));
  const auto labels = at::randint(10, {batch}, at::TensorOptions(device).dtype(at::kLong));
  const bench::ReferenceCommand command{s.python, s.reference, at::get_num_threads(), batch};
  std::unique_ptr<bench::PytorchReference> reference;
  std::optional<bench::MultiplyAdds> multiply_adds;
  if (!s.reference.empty() && device.is_cpu()) {
    try {
      multiply_adds = bench::count_multiply_adds(command);
      reference = std::make_unique<bench::PytorchReference>(command);
    } catch (const std::exception& e) {
      fmt::print("PyTorch reference not run ({}): bench/setup.sh installs python3-torch\n", e.what());
    }
  }
  std::vector<double> iterations, nhwc_iterations, bf16_iterations, bf16_g_iterations, pytorch, generators, input_grads, trains;
  for (int round = 0; round < s.rounds; ++round) {
    iterations.push_back(time_ms(device, s.iterations, [&] { trainer.iteration(1, metrics); }));
    nhwc_iterations.push_back(time_ms(device, s.iterations, [&] { channels_last->iteration(1, metrics); }));
    bf16_iterations.push_back(time_ms(device, s.iterations, [&] { bf16->iteration(1, metrics); }));
    bf16_g_iterations.push_back(time_ms(device, s.iterations, [&] { bf16_generator->iteration(1, metrics); }));
    if (reference) pytorch.push_back(reference->ms_per_iteration(s.iterations));
    generators.push_back(time_ms(device, s.iterations, [&] {
      const auto latents = generator->sample(batch, additions.superposition, device);
      generator->zero_grad();
      generator->forward(latents).square().mean().backward();
    }));
    input_grads.push_back(time_ms(device, s.iterations, [&] {
      auto input = at::randn({batch, 3, 32, 32}, at::TensorOptions(device)).requires_grad_(true);
      teacher->forward(input).sum().backward();
    }));
    trains.push_back(time_ms(device, s.iterations, [&] {
      const auto loss = at::nll_loss(at::log_softmax(student->forward(x), 1), labels);
      sgd.zero_grad();
      loss.backward();
      sgd.step();
    }));
  }
  breakdown();
  // Machine speed drifts on a shared host: the ratio is taken within each round (the iteration and
  // its bare parts measured back to back) and the median of those ratios reported with its range.
  std::vector<double> ratios;
  for (int round = 0; round < s.rounds; ++round) {
    ratios.push_back(iterations[round] / (generators[round] + input_grads[round] + trains[round]));
  }
  const double iteration = median(iterations);
  const double bare_generator = median(generators);
  const double bare_input_grad = median(input_grads);
  const double bare_train = median(trains);
  const double bare = bare_generator + bare_input_grad + bare_train;

  Table table({fmt::format("batch {}", batch), "ms"});
  table.add_row({"iteration (no synchronisation, median)", fmt::format("{:.1f}", iteration)});
  table.add_row({"breakdown (synchronised after each phase):", ""});
  for (const auto& phase : order) {
    table.add_row({"  " + phase, fmt::format("{:.1f}", phases[phase] / s.iterations)});
  }
  table.add_row({"bare network work (medians):", ""});
  table.add_row({"  generator forward+backward", fmt::format("{:.1f}", bare_generator)});
  table.add_row({"  ResNet-20 forward + input-gradient backward", fmt::format("{:.1f}", bare_input_grad)});
  table.add_row({"  ResNet-20 training step", fmt::format("{:.1f}", bare_train)});
  table.add_row({"  sum", fmt::format("{:.1f}", bare)});
  fmt::print("{}overhead ratio (iteration / bare sum, median of {} rounds): {:.3f} (rounds {:.3f} to "
             "{:.3f}; ratio of the medians {:.3f}; target <= 1.15)\n{}\n\n",
             table.render(), s.rounds, median(ratios), *std::min_element(ratios.begin(), ratios.end()),
             *std::max_element(ratios.begin(), ratios.end()), iteration / bare, peak_memory(device));
  if (reference) {
    print_against_pytorch({{"ours, NCHW, fp32", iterations},
                           {"ours, channels-last, fp32", nhwc_iterations},
                           {"ours, channels-last, bf16 (G and P)", bf16_iterations},
                           {"ours, channels-last, bf16-generator (G only)", bf16_g_iterations}},
                          pytorch, multiply_adds, batch, reference->version());
  } else {
    fmt::print("channels-last iteration (median): {:.1f} ms, {:.3f} x NCHW; with bf16 G and P: {:.1f} ms, "
               "{:.3f} x NCHW\n\n",
               median(nhwc_iterations), median(nhwc_iterations) / iteration, median(bf16_iterations),
               median(bf16_iterations) / iteration);
  }
}

}  // namespace

int main(int argc, char** argv) {
  qimera::tune_allocator();
  spdlog::set_level(spdlog::level::warn);
  try {
    const auto s = parse(argc, argv);
    qimera::configure_threads(s.threads);
    const auto device = qimera::resolve_device(s.device);
    fmt::print("bench_train_step: Qimera 4w4a, ResNet-20 (CIFAR size), {}\n\n",
               qimera::describe_runtime(device));
    for (int64_t batch : s.batch_sizes) run(s, batch, device);
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  return 0;
}
