// Images/s of the int8 engine (LibTorch's quantized operators on oneDNN) against float32 inference
// of the same network, measured in the same run, and the ratio:
//   float32        the full-precision model as `qimera eval` runs it (NCHW)
//   float32 NHWC   the same in channels_last (the layout the quantized operators use)
//   fake-quant     the 8w8a fake-quantized model (the exact reference, float arithmetic)
//   int8 engine    the same model on integer operators (batch norm folded)
// Default: the bundled Fashion-MNIST ResNet-20 quantized to 8w8a by post-training quantization on
// N(0,1) noise; --arch runs a zoo architecture with random weights at --image-size instead.
// Every measurement runs in `rounds` interleaved rounds; medians are reported.
//
// Flags: bench_int8 --help.
#include "qimera/core/runtime.h"
#include "qimera/core/table.h"
#include "qimera/deploy/int8_engine.h"
#include "qimera/deploy/lower.h"
#include "qimera/deploy/model_card.h"
#include "qimera/methods/ptq.h"
#include "qimera/models/zoo.h"

#include <ATen/ATen.h>
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Settings {
  std::string model = QIMERA_SOURCE_DIR "/assets/fmnist-resnet20/model.json";
  std::string arch;  // a zoo preset instead of the card
  int64_t image_size = 0;
  int threads = 0;
  int64_t batch_size = 256;
  int batches = 8;
  int rounds = 5;
  int bits = 8;
};

Settings parse(int argc, char** argv) {
  Settings s;
  CLI::App app("Images/s of the int8 engine against float32 inference of the same network, and "
               "the ratio, measured in one run");
  app.add_option("--model", s.model, "Model card to quantize")->capture_default_str();
  app.add_option("--arch", s.arch, "A zoo preset with random weights instead (resnet20_cifar10, resnet18, ...)");
  app.add_option("--image-size", s.image_size, "Input size for --arch (default: the preset's)");
  app.add_option("--threads", s.threads, "CPU threads for LibTorch (0: one per core)")->capture_default_str();
  app.add_option("--batch-size", s.batch_size, "Images per forward pass")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--batches", s.batches, "Timed forward passes per measurement")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--rounds", s.rounds, "Interleaved repetitions (median reported)")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--bits", s.bits, "Weight and activation bits")->capture_default_str()->check(CLI::Range(2, 8));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e));
  }
  return s;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Candidate {
  std::string name;
  std::function<at::Tensor(const at::Tensor&)> forward;
  at::Tensor input;
  std::vector<double> rates;  // images/s per round
};

}  // namespace

int main(int argc, char** argv) {
  qimera::tune_allocator();
  const auto s = parse(argc, argv);
  qimera::configure_threads(s.threads);
  spdlog::set_level(spdlog::level::warn);
  namespace q = qimera;
  at::NoGradGuard no_grad;

  q::models::Classifier fp;
  q::data::Preprocess preprocess = q::data::preprocess_preset("none");
  if (s.arch.empty()) {
    const auto card = q::deploy::read_model_card(s.model);
    fp = q::deploy::load_classifier(card, c10::kCPU);
    preprocess = card.preprocess;
  } else {
    auto spec = q::models::preset_spec(s.arch);
    if (s.image_size > 0) spec.image_size = s.image_size;
    fp = q::models::build_model(spec);
    fp->eval();
  }
  const auto spec = fp->spec();
  q::quant::QuantConfig config;
  config.weight_bits = config.act_bits = s.bits;
  q::methods::CalibrationOptions calibration;
  calibration.observer.kind = q::quant::ObserverKind::Percentile;
  const auto fake = q::methods::post_training_quantize(
      *fp, config, calibration, q::methods::gaussian_batches(spec, 64, c10::kCPU, 1));
  auto noise = q::methods::gaussian_batches(spec, 64, c10::kCPU, 2);
  std::vector<at::Tensor> calib;
  for (int i = 0; i < 4; ++i) calib.push_back(noise());
  const auto engine = std::make_shared<q::deploy::Int8Model>(q::deploy::lower(*fake, preprocess), calib);

  const auto x = at::randn({s.batch_size, spec.in_channels, spec.image_size, spec.image_size});
  const auto x_nhwc = x.contiguous(at::MemoryFormat::ChannelsLast);
  auto fp_nhwc = q::models::clone_model(*fp);
  for (auto& p : fp_nhwc->parameters()) {
    if (p.dim() == 4) p.set_data(p.data().contiguous(at::MemoryFormat::ChannelsLast));
  }
  std::vector<Candidate> candidates = {
      {"float32", [&](const at::Tensor& t) { return fp->forward(t); }, x, {}},
      {"float32 NHWC", [&](const at::Tensor& t) { return fp_nhwc->forward(t); }, x_nhwc, {}},
      {fmt::format("fake-quant {}", config.short_name()), [&](const at::Tensor& t) { return fake->forward(t); }, x, {}},
      {fmt::format("int8 engine {}", config.short_name()), [&](const at::Tensor& t) { return engine->forward(t); }, x, {}},
  };
  for (auto& c : candidates) c.forward(c.input);  // warm-up: allocations, oneDNN kernels
  for (int r = 0; r < s.rounds; ++r) {
    for (auto& c : candidates) {
      const auto start = Clock::now();
      for (int b = 0; b < s.batches; ++b) c.forward(c.input);
      const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
      c.rates.push_back(static_cast<double>(s.batch_size * s.batches) / seconds);
    }
  }

  fmt::print("{}\n{}, batch {}, {} rounds of {} batches\n{}\n", q::describe_runtime(c10::kCPU), spec.describe(),
             s.batch_size, s.rounds, s.batches, engine->report().describe());
  q::Table table({"inference", "images/s (median)", "range"});
  for (const auto& c : candidates) {
    const auto [lo, hi] = std::minmax_element(c.rates.begin(), c.rates.end());
    table.add_row({c.name, fmt::format("{:.0f}", median(c.rates)), fmt::format("{:.0f} to {:.0f}", *lo, *hi)});
  }
  fmt::print("{}", table.render());
  const double int8 = median(candidates[3].rates);
  // Ratio per round, so that a slow round on a shared machine hits both sides.
  std::vector<double> ratios, ratios_nhwc;
  for (int r = 0; r < s.rounds; ++r) {
    ratios.push_back(candidates[3].rates[r] / candidates[0].rates[r]);
    ratios_nhwc.push_back(candidates[3].rates[r] / candidates[1].rates[r]);
  }
  fmt::print("int8 engine / float32: {:.2f}x (median of {} rounds; {:.0f} vs {:.0f} images/s)\n", median(ratios),
             s.rounds, int8, median(candidates[0].rates));
  fmt::print("int8 engine / float32 NHWC: {:.2f}x\n", median(ratios_nhwc));
  return 0;
}
