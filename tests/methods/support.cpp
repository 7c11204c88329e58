#include "methods/support.h"

#include "qimera/data/loader.h"
#include "qimera/models/zoo.h"
#include "qimera/methods/method.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/optim/sgd.h>

#include <map>

namespace qimera::methods::support {
namespace {
// Low-contrast patterns with little noise: the teacher must resolve small differences, which 4-bit
// activations with badly placed ranges destroy.
constexpr double kContrast = 0.1;
constexpr double kNoise = 0.03;
}  // namespace

std::shared_ptr<data::TensorDataset> pattern_dataset(int64_t classes, int64_t per_class, int64_t size,
                                                     uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1234);  // the patterns: same for every seed
  const auto coarse = at::rand({classes, 1, 4, 4}, gen);
  const auto patterns = 0.5 + kContrast * (at::upsample_bilinear2d(coarse, {size, size}, false) - 0.5);
  auto sample_gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const int64_t n = classes * per_class;
  const auto labels = at::arange(n, at::kLong).remainder(classes);
  const auto brightness = 0.6 + 0.4 * at::rand({n, 1, 1, 1}, sample_gen);
  const auto noise = kNoise * at::randn({n, 1, size, size}, sample_gen);
  const auto images = (patterns.index_select(0, labels) * brightness + noise).clamp(0, 1);
  return std::make_shared<data::TensorDataset>((images * 255).round().to(at::kByte), labels, classes,
                                               "synthetic patterns");
}

data::Preprocess pattern_preprocess() {
  // Deliberately not the data's own statistics (its pixel std is ~0.05): like reusing another data
  // set's constants, this leaves the real inputs far narrower than N(0, 1).
  data::Preprocess p;
  p.mean = {0.45f};
  p.std = {0.25f};
  return p;
}

models::Classifier trained_tiny_teacher(int64_t classes, int64_t size) {
  // Trained once per program and size (seconds each); callers that change it take a clone.
  static std::map<std::pair<int64_t, int64_t>, models::Classifier> trained;
  auto& model = trained[{classes, size}];
  if (!model) model = train_tiny_teacher(classes, size);
  return model;
}

const models::Classifier& teacher() {
  static const auto model = trained_tiny_teacher(kClasses, kSize);
  return model;
}

data::BatchLoader pattern_test_loader(int64_t per_class, int64_t batch_size) {
  data::LoaderOptions o;
  o.batch_size = batch_size;
  o.workers = 0;
  return data::BatchLoader(pattern_dataset(kClasses, per_class, kSize, 99), pattern_preprocess(), o);
}

models::Classifier train_tiny_teacher(int64_t classes, int64_t size) {
  at::manual_seed(0);
  auto model = models::build_model(models::ModelSpec{models::Arch::ResNet20Cifar, classes, 1, size});
  auto dataset = pattern_dataset(classes, 100, size, 1);
  data::LoaderOptions loading;
  loading.batch_size = 32;
  loading.shuffle = true;
  loading.workers = 0;
  data::BatchLoader loader(dataset, pattern_preprocess(), loading);
  torch::optim::SGD optimizer(model->parameters(),
                              torch::optim::SGDOptions(0.05).momentum(0.9).nesterov(true));
  model->train();
  for (int64_t epoch = 0; epoch < 8; ++epoch) {
    loader.start_epoch(epoch);
    while (auto batch = loader.next()) {
      const auto loss = at::nll_loss(at::log_softmax(model->forward(batch->images), 1), batch->labels);
      optimizer.zero_grad();
      loss.backward();
      optimizer.step();
    }
  }
  model->eval();
  return model;
}

MethodOutcome run_method_named(const std::string& method, const nlohmann::json& options,
                               models::Classifier teacher, const std::filesystem::path& dir,
                               data::BatchLoader* test, bool resume, c10::Device device) {
  const auto& info = find_method(method);
  auto m = info.make();
  const Describe describe = [&](OptionVisitor& v) { m->describe(v); };
  apply_json(describe, options, "test options");
  m->validate();
  MethodContext context;
  context.teacher = std::move(teacher);
  context.device = device;
  context.test = test;
  context.folder = RunFolder{dir};
  context.resume = resume;
  context.preprocess = pattern_preprocess();
  context.workers = 0;
  return run_method(info, *m, context);
}

}  // namespace qimera::methods::support
