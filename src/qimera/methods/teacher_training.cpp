#include "qimera/methods/teacher_training.h"

#include "qimera/core/error.h"
#include "qimera/core/json_file.h"
#include "qimera/data/loader.h"
#include "qimera/deploy/model_card.h"
#include "qimera/io/safetensors.h"
#include "qimera/io/state_dict.h"
#include "qimera/methods/run_loop.h"

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>
#include <torch/optim/sgd.h>

#include <chrono>

namespace qimera::methods {
namespace fs = std::filesystem;

void TeacherTrainingOptions::validate() const {
  require(epochs >= 1, "--epochs must be at least 1, got {}", epochs);
  require(batch_size >= 1, "--batch-size must be at least 1, got {}", batch_size);
  require(lr > 0, "--lr must be positive, got {}", lr);
  require(momentum >= 0 && momentum < 1, "--momentum must be in [0, 1), got {}", momentum);
  require(weight_decay >= 0, "--weight-decay must not be negative, got {}", weight_decay);
  require(!nesterov || momentum > 0, "Nesterov momentum needs --momentum > 0");
  require(eval_every >= 1 && log_every >= 1, "--eval-every and --log-every must be at least 1");
}

nlohmann::json TeacherTrainingOptions::to_json() const {
  return {{"epochs", epochs},
          {"batch_size", batch_size},
          {"lr", lr},
          {"momentum", momentum},
          {"weight_decay", weight_decay},
          {"nesterov", nesterov},
          {"schedule", schedule.to_json()},
          {"augment", {{"crop_padding", augment.crop_padding}, {"horizontal_flip", augment.horizontal_flip}}},
          {"workers", workers},
          {"seed", seed},
          {"eval_every", eval_every}};
}

namespace {

// One pass over the training set per epoch. Loss and accuracy accumulate on the device.
class TeacherTrainable : public Trainable {
 public:
  TeacherTrainable(models::ClassifierImpl& model, data::BatchLoader& loader,
                   torch::optim::SGD& optimizer, const TeacherTrainingOptions& options,
                   c10::Device device)
      : model_(model), loader_(loader), optimizer_(optimizer), options_(options), device_(device) {}

  int64_t iterations(int64_t) override { return loader_.batches_per_epoch(); }

  std::vector<std::pair<std::string, double>> begin_epoch(int64_t epoch, double lr_scale) override {
    const double lr = options_.lr * options_.schedule.factor(epoch, options_.epochs) * lr_scale;
    set_learning_rate(optimizer_, lr);
    model_.train();
    loader_.start_epoch(epoch);
    return {{"lr", lr}};
  }

  void iteration(int64_t epoch, MetricSums& metrics) override {
    auto batch = loader_.next();
    require(batch.has_value(), "the training data ran out before the end of epoch {}", epoch + 1);
    const auto logits = model_.forward(batch->images);
    const auto loss = at::nll_loss(at::log_softmax(logits, 1), batch->labels);
    optimizer_.zero_grad();
    loss.backward();
    optimizer_.step();
    at::NoGradGuard no_grad;
    metrics.add("train_loss", loss);
    metrics.add("train_top1", logits.argmax(1).eq(batch->labels).to(at::kFloat).mean() * 100);
  }

  TrainingState state() override {
    TrainingState s;
    s.modules = {{"model", &model_}};
    s.optimizers = {{"optimizer", &optimizer_}};
    s.device = device_;
    return s;
  }

  models::ClassifierImpl& evaluated() override { return model_; }

 private:
  models::ClassifierImpl& model_;
  data::BatchLoader& loader_;
  torch::optim::SGD& optimizer_;
  const TeacherTrainingOptions& options_;
  c10::Device device_;
};

}  // namespace

TeacherTrainingResult train_teacher(models::ClassifierImpl& model,
                                    std::shared_ptr<const data::Dataset> train,
                                    std::shared_ptr<const data::Dataset> test,
                                    const data::Preprocess& preprocess,
                                    const TeacherTrainingOptions& options, const fs::path& run_dir,
                                    bool resume, c10::Device device, const nlohmann::json& provenance) {
  options.validate();
  require(train->num_classes() == model.spec().num_classes,
          "the training set has {} classes, the model {}", train->num_classes(),
          model.spec().num_classes);
  const auto start = std::chrono::steady_clock::now();

  data::LoaderOptions train_loading;
  train_loading.batch_size = options.batch_size;
  train_loading.shuffle = true;
  train_loading.drop_last = true;
  train_loading.augment = options.augment;
  train_loading.workers = options.workers;
  train_loading.seed = options.seed;
  train_loading.device = device;
  data::BatchLoader train_loader(train, preprocess, train_loading);
  std::optional<data::BatchLoader> test_loader;
  if (test) {
    data::LoaderOptions test_loading;
    test_loading.batch_size = 500;
    test_loading.workers = options.workers;
    test_loading.device = device;
    test_loader.emplace(test, preprocess, test_loading);
  }

  torch::optim::SGD optimizer(model.parameters(), torch::optim::SGDOptions(options.lr)
                                                      .momentum(options.momentum)
                                                      .weight_decay(options.weight_decay)
                                                      .nesterov(options.nesterov));
  const RunFolder folder{run_dir};
  open_run(folder,
           {{"options", options.to_json()},
            {"model", model.spec().to_json()},
            {"train_data", train->description()},
            {"test_data", test ? test->description() : "none"},
            {"preprocess", data::preprocess_to_json(preprocess)},
            {"provenance", provenance}},
           resume);
  TeacherTrainable trainable(model, train_loader, optimizer, options, device);
  LoopOptions loop;
  loop.epochs = options.epochs;
  loop.eval_every = options.eval_every;
  loop.log_every = options.log_every;
  const auto run = run_epochs(trainable, loop, folder, resume, test_loader ? &*test_loader : nullptr);
  TeacherTrainingResult result;
  result.test = run.final_epoch->test;
  if (!result.test && test_loader) result.test = eval::evaluate_model(model, *test_loader);

  model.eval();
  const fs::path weights = run_dir / "model.safetensors";
  io::write_safetensors(weights, io::state_dict_of(model), {{"format", "pytorch-state-dict"}});
  deploy::ModelCard card;
  card.spec = model.spec();
  card.weights = weights;
  card.preprocess = preprocess;
  card.class_names = train->class_names();
  card.provenance = provenance;
  card.provenance["training"] = options.to_json();
  card.provenance["train_data"] = train->description();
  if (result.test) {
    card.provenance["test_data"] = test->description();
    card.provenance["test_top1_final_epoch"] = result.test->top1;
  }
  result.card = run_dir / "model.json";
  deploy::write_model_card(result.card, card);
  result.epochs = options.epochs;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  write_json(run_dir / "result.json",
             {{"epochs", result.epochs},
              {"seconds_this_session", result.seconds},
              {"seconds_all_sessions", result.seconds + run.seconds_all_sessions - run.seconds},
              {"test_final_epoch", result.test ? result.test->to_json() : nlohmann::json()},
              {"card", result.card.string()},
              {"collapses", run.collapses}});
  return result;
}

}  // namespace qimera::methods
