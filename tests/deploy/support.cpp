#include "deploy/support.h"

#include "qimera/core/error.h"
#include "qimera/core/json_file.h"
#include "support/test_support.h"
#include "qimera/deploy/model_card.h"
#include "qimera/deploy/quantized_model.h"
#include "qimera/models/zoo.h"

#include <ATen/ATen.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

namespace qimera::deploy::support {
namespace fs = std::filesystem;
namespace {

constexpr const char* kTeacher = "fmnist-resnet20";

fs::path teacher_card() { return fs::path(QIMERA_SOURCE_DIR) / "assets/fmnist-resnet20/model.json"; }

// Trained networks have batch norms far from the identity (and some negative scales): so should
// the test networks, or folding them would go untested.
void randomize_batch_norms(models::ClassifierImpl& model, uint64_t seed) {
  at::NoGradGuard no_grad;
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (const auto& bn : model.batch_norms()) {
    const int64_t c = bn->weight.numel();
    bn->weight.copy_(at::rand({c}, generator) * 1.6 - 0.3);
    bn->bias.copy_(at::randn({c}, generator) * 0.1);
    bn->running_mean.copy_(at::randn({c}, generator) * 0.1);
    bn->running_var.copy_(at::rand({c}, generator) * 1.5 + 0.5);
  }
}

models::ModelSpec tiny(const std::string& preset) {
  auto spec = models::preset_spec(preset);
  spec.image_size = spec.arch == models::Arch::ResNet20Cifar ? 16 : 32;
  return spec;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TestModel build_test_model(const std::string& name);

}  // namespace

std::vector<std::string> test_model_names() {
  auto names = models::preset_names();
  names.push_back(kTeacher);
  return names;
}

TestModel test_model(const std::string& name) {
  // Built once per process: the tests only read them.
  static std::map<std::string, TestModel> cache;
  auto it = cache.find(name);
  if (it == cache.end()) it = cache.emplace(name, build_test_model(name)).first;
  return it->second;
}

namespace {

TestModel build_test_model(const std::string& name) {
  if (name == kTeacher) {
    const auto card = read_model_card(teacher_card());
    return {name, load_classifier(card, c10::kCPU), card.preprocess};
  }
  at::manual_seed(7);
  auto model = models::build_model(tiny(name));
  randomize_batch_norms(*model, 11);
  model->eval();
  const auto spec = model->spec();
  return {name, model, data::preprocess_preset(spec.arch == models::Arch::ResNet20Cifar ? "cifar10" : "imagenet")};
}

}  // namespace

at::Tensor random_images(const models::ClassifierImpl& model, int64_t n, uint64_t seed) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  const auto& s = model.spec();
  return at::randint(0, 256, {n, s.in_channels, s.image_size, s.image_size}, generator, at::kByte);
}

quant::QuantConfig config_of(int weight_bits, int act_bits, std::vector<std::string> overrides) {
  quant::QuantConfig config;
  config.weight_bits = weight_bits;
  config.act_bits = act_bits;
  config.observer.kind = quant::ObserverKind::MinMax;
  for (const auto& o : overrides) config.overrides.push_back(quant::parse_layer_override(o));
  return config;
}

fs::path quantized_export(const TestModel& m, const quant::QuantConfig& config) {
  // Made once per process and configuration, in a folder that lives as long as the process.
  static qimera::testing::TempDir store;
  static std::map<std::string, fs::path> made;
  const auto key = fmt::format("{} {}", m.name, config.to_json().dump());
  if (made.count(key)) return made[key];
  auto q = models::clone_model(*m.model);
  quant::convert(*q, config);
  {
    at::NoGradGuard no_grad;
    for (uint64_t i = 0; i < 3; ++i) q->forward(data::normalize(random_images(*q, 16, 100 + i), m.preprocess));
  }
  quant::set_observing(*q, false);
  const auto manifest = store / fmt::format("{}-{}-{}.json", m.name, config.short_name(), made.size());
  export_quantized(*q, config, m.preprocess, manifest);
  return made[key] = manifest;
}

bool onnxruntime_available(std::string* why) {
  if (std::system("node --version > /dev/null 2>&1") != 0) {
    *why = "node is not installed (apt-get install nodejs npm), so ONNX Runtime cannot run";
    return false;
  }
  const char* cache = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  const fs::path dir = std::getenv("QIMERA_ORT_DIR")
                           ? fs::path(std::getenv("QIMERA_ORT_DIR"))
                           : (cache ? fs::path(cache) : fs::path(home ? home : "/") / ".cache") / "qimera/onnxruntime";
  if (!fs::exists(dir / "node_modules/onnxruntime-node/package.json")) {
    *why = "onnxruntime-node is not installed in " + dir.string() + ": run scripts/install-onnxruntime.sh";
    return false;
  }
  return true;
}

at::Tensor onnxruntime_logits(const fs::path& model, const at::Tensor& images, const fs::path& work_dir) {
  const auto pixels = images.contiguous();
  const auto raw = work_dir / (model.stem().string() + ".u8");
  const auto out = work_dir / (model.stem().string() + ".f32");
  {
    std::ofstream f(raw, std::ios::binary);
    f.write(reinterpret_cast<const char*>(pixels.data_ptr<uint8_t>()), pixels.numel());
  }
  const auto command = fmt::format("node {}/scripts/onnx-run.js '{}' --raw '{}' --shape {} --logits '{}' 2>&1",
                                   QIMERA_SOURCE_DIR, model.string(), raw.string(),
                                   fmt::join(pixels.sizes(), ","), out.string());
  std::string output;
  FILE* pipe = ::popen(command.c_str(), "r");
  char buffer[4096];
  while (size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
  require(::pclose(pipe) == 0, "ONNX Runtime failed on {}: {}", model.string(), output);
  const auto bytes = read_text(out);
  const int64_t n = pixels.size(0);
  require(bytes.size() % (sizeof(float) * static_cast<size_t>(n)) == 0, "{}: {} bytes of logits for {} images",
          out.string(), bytes.size(), n);
  const auto classes = static_cast<int64_t>(bytes.size() / sizeof(float)) / n;
  return at::from_blob(const_cast<char*>(bytes.data()), {n, classes}, at::kFloat).clone();
}

Deviation deviation(const at::Tensor& logits, const at::Tensor& reference) {
  const auto diff = (logits - reference).abs();
  Deviation d;
  d.max_abs = diff.max().item<double>();
  d.max_rel = d.max_abs / std::max(reference.abs().max().item<double>(), 1e-12);
  d.top1_agreement = logits.argmax(1).eq(reference.argmax(1)).to(at::kDouble).mean().item<double>();
  return d;
}

}  // namespace qimera::deploy::support
