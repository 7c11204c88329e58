#include "qimera/methods/teacher_training.h"

#include "qimera/core/error.h"
#include "qimera/core/json_file.h"
#include "qimera/core/progress.h"
#include "qimera/data/loader.h"
#include "qimera/deploy/model_card.h"
#include "qimera/io/safetensors.h"
#include "qimera/io/state_dict.h"
#include "qimera/methods/checkpoint.h"

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

struct EpochStats {
  double loss = 0, accuracy = 0;
};

// One pass over the training set. Loss and accuracy accumulate on the device; the host reads them
// only every `log_every` iterations for the progress bar.
EpochStats train_epoch(models::ClassifierImpl& model, data::BatchLoader& loader,
                       torch::optim::SGD& optimizer, int64_t epoch, const TeacherTrainingOptions& o) {
  model.train();
  loader.start_epoch(epoch);
  ProgressBar bar(loader.batches_per_epoch(), fmt::format("epoch {}/{}", epoch + 1, o.epochs));
  at::Tensor loss_sum = at::zeros({}, at::kDouble), correct = at::zeros({}, at::kLong);
  int64_t samples = 0, step = 0;
  std::string shown;
  while (auto batch = loader.next()) {
    const auto logits = model.forward(batch->images);
    const auto loss = at::nll_loss(at::log_softmax(logits, 1), batch->labels);
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    {
      at::NoGradGuard no_grad;
      if (loss_sum.device() != loss.device()) {
        loss_sum = loss_sum.to(loss.device());
        correct = correct.to(loss.device());
      }
      const int64_t n = batch->labels.size(0);
      loss_sum += loss.detach().to(at::kDouble) * n;
      correct += logits.argmax(1).eq(batch->labels).sum();
      samples += n;
    }
    if (++step % o.log_every == 0) {
      shown = fmt::format("loss {:.4f} acc {:.2f}%", loss_sum.item<double>() / samples,
                          100.0 * correct.item<double>() / samples);
    }
    bar.update(step, shown);
  }
  require(samples > 0, "the training set is empty (or smaller than one batch with drop_last)");
  EpochStats stats{loss_sum.item<double>() / samples, 100.0 * correct.item<double>() / samples};
  require(std::isfinite(stats.loss),
          "training diverged at epoch {} (loss is {}): lower --lr and start again", epoch + 1,
          stats.loss);
  bar.finish(fmt::format("loss {:.4f} acc {:.2f}%", stats.loss, stats.accuracy));
  return stats;
}

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
  const fs::path checkpoint = run_dir / "checkpoint.pt";
  require(resume || !fs::exists(checkpoint),
          "{} already holds a training run: pass --resume to continue it, or choose another --out",
          run_dir.string());

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
  TrainingState state{{{"model", &model}}, {{"optimizer", &optimizer}}, device};
  int64_t first_epoch = 0;
  if (resume && fs::exists(checkpoint)) {
    first_epoch = load_checkpoint(checkpoint, state).next_epoch;
    spdlog::info("resuming {} at epoch {}", run_dir.string(), first_epoch + 1);
  }
  write_json(run_dir / "config.json", {{"options", options.to_json()},
                                       {"model", model.spec().to_json()},
                                       {"train_data", train->description()},
                                       {"test_data", test ? test->description() : "none"},
                                       {"preprocess", data::preprocess_to_json(preprocess)},
                                       {"provenance", provenance}});

  TeacherTrainingResult result;
  for (int64_t epoch = first_epoch; epoch < options.epochs; ++epoch) {
    const double lr = options.lr * options.schedule.factor(epoch, options.epochs);
    set_learning_rate(optimizer, lr);
    const auto stats = train_epoch(model, train_loader, optimizer, epoch, options);
    nlohmann::json line{{"epoch", epoch + 1}, {"lr", lr}, {"train_loss", stats.loss},
                        {"train_top1", stats.accuracy}};
    const bool last = epoch + 1 == options.epochs;
    if (test_loader && ((epoch + 1) % options.eval_every == 0 || last)) {
      const auto acc = eval::evaluate_model(model, *test_loader);
      line["test_top1"] = acc.top1;
      line["test_top5"] = acc.top5;
      spdlog::info("epoch {}/{}: test top-1 {:.2f}%", epoch + 1, options.epochs, acc.top1);
      if (last) result.test = acc;
    }
    append_json_line(run_dir / "metrics.jsonl", line);
    save_checkpoint(checkpoint, state, epoch + 1);
  }
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
              {"test_final_epoch", result.test ? result.test->to_json() : nlohmann::json()},
              {"card", result.card.string()}});
  return result;
}

}  // namespace qimera::methods
