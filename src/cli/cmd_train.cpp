// qimera train: trains a full-precision teacher on a labelled data set.
#include "commands.h"
#include "common.h"
#include "qimera/core/error.h"
#include "qimera/core/progress.h"
#include "qimera/methods/teacher_training.h"
#include "qimera/models/zoo.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace qimera::cli {
namespace {

struct TrainOptions {
  CommonOptions common;
  std::string arch = "resnet20";
  std::string train_data = "fashion-mnist:train";
  std::string test_data = "fashion-mnist:test";
  std::string preprocess;
  std::string schedule = "cosine";
  double gamma = 0.1;
  bool no_nesterov = false;
  std::string out = "runs/teacher";
  bool resume = false;
  methods::TeacherTrainingOptions training;
};

// Classes from the data; input channels and size from the first image after preprocessing.
models::ModelSpec spec_for(const std::string& arch, const data::Dataset& dataset,
                           const data::Preprocess& preprocess) {
  models::ModelSpec spec;
  spec.arch = models::parse_arch(arch == "resnet20_cifar10" || arch == "resnet20_cifar100"
                                     ? std::string("resnet20")
                                     : arch);
  const auto image = data::apply_geometry(preprocess, dataset.get(0).image);
  spec.num_classes = dataset.num_classes();
  spec.in_channels = image.size(0);
  spec.image_size = image.size(1);
  require(image.size(1) == image.size(2),
          "images are {}x{} after preprocessing: the zoo's models expect square inputs (use "
          "--preprocess with a center crop)",
          image.size(1), image.size(2));
  return spec;
}

void run_train(TrainOptions& o) {
  const auto device = apply_common_options(o.common);
  auto train = open_data(o.train_data, o.common);
  std::shared_ptr<const data::Dataset> test;
  if (!o.test_data.empty() && o.test_data != "none") test = open_data(o.test_data, o.common);
  const auto preprocess =
      data::preprocess_preset(o.preprocess.empty() ? default_preprocess_for(o.train_data) : o.preprocess);
  o.training.schedule = methods::LrSchedule::parse(o.schedule, o.gamma);
  o.training.nesterov = !o.no_nesterov;
  o.training.seed = o.common.seed;
  o.training.workers = o.common.workers;
  const auto spec = spec_for(o.arch, *train, preprocess);
  spdlog::info("model: {}", spec.describe());
  auto model = models::build_model(spec);
  model->to(device);
  const auto result = methods::train_teacher(*model, train, test, preprocess, o.training, o.out,
                                             o.resume, device, {{"command", command_line()}});
  fmt::print("trained {} for {} epochs in {}\n", spec.describe(), result.epochs,
             format_duration(result.seconds));
  if (result.test) {
    fmt::print("test top-1 {:.2f}%  top-5 {:.2f}% (final epoch, {} images)\n", result.test->top1,
               result.test->top5, result.test->samples);
  }
  fmt::print("model card: {}\n", result.card.string());
}

}  // namespace

void add_train_command(CLI::App& app) {
  static TrainOptions o;
  auto* cmd = app.add_subcommand(
      "train",
      "Train a full-precision classifier (the teacher) on a labelled data set: SGD with Nesterov "
      "momentum, cosine or multi-step schedule, random-crop/flip augmentation, a checkpoint every "
      "epoch (--resume continues a killed run). Writes model.safetensors and a model card "
      "model.json to --out.");
  add_common_options(*cmd, o.common);
  cmd->add_option("--arch", o.arch, "Architecture: resnet20, resnet18, resnet50, mobilenetv2_w1")
      ->capture_default_str();
  cmd->add_option("--data", o.train_data, "Training data (e.g. fashion-mnist:train, cifar10:DIR:train)")
      ->capture_default_str();
  cmd->add_option("--test-data", o.test_data, "Test data evaluated after epochs ('none' to skip)")
      ->capture_default_str();
  cmd->add_option("--preprocess", o.preprocess,
                  "Preprocessing preset (cifar10, cifar100, imagenet, mnist, fashion-mnist, none); "
                  "default: the data set's");
  cmd->add_option("--epochs", o.training.epochs, "Training epochs")->capture_default_str();
  cmd->add_option("--batch-size", o.training.batch_size, "Batch size")->capture_default_str();
  cmd->add_option("--lr", o.training.lr, "Base learning rate")->capture_default_str();
  cmd->add_option("--momentum", o.training.momentum, "SGD momentum")->capture_default_str();
  cmd->add_flag("--no-nesterov", o.no_nesterov, "Plain momentum instead of Nesterov");
  cmd->add_option("--weight-decay", o.training.weight_decay, "L2 weight decay")->capture_default_str();
  cmd->add_option("--schedule", o.schedule, "constant, cosine or multistep:E1,E2,...")
      ->capture_default_str();
  cmd->add_option("--lr-gamma", o.gamma, "Multi-step decay factor")->capture_default_str();
  cmd->add_option("--crop-padding", o.training.augment.crop_padding,
                  "Random crop after zero padding by this many pixels (0: off)")
      ->capture_default_str();
  cmd->add_flag("--flip,!--no-flip", o.training.augment.horizontal_flip, "Random horizontal flips");
  cmd->add_option("--eval-every", o.training.eval_every, "Evaluate on the test data every N epochs")
      ->capture_default_str();
  cmd->add_option("--log-every", o.training.log_every, "Iterations between progress-bar metrics")
      ->capture_default_str();
  cmd->add_option("--out", o.out, "Run folder")->capture_default_str();
  cmd->add_flag("--resume", o.resume, "Continue the run in --out from its last checkpoint");
  cmd->callback([] { run_train(o); });
}

}  // namespace qimera::cli
