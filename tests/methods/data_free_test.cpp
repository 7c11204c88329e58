// The data-free methods end to end on a tiny teacher, resuming, NaN handling and options.
#include "methods/support.h"
#include "qimera/core/error.h"
#include "qimera/core/json_file.h"
#include "qimera/data/loader.h"
#include "qimera/eval/evaluate.h"
#include "qimera/methods/data_free.h"
#include "qimera/methods/presets.h"
#include "qimera/methods/ptq.h"
#include "qimera/models/zoo.h"
#include "support/test_support.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace qimera::methods {
namespace {

using qimera::testing::TempDir;
constexpr int64_t kClasses = 10;
constexpr int64_t kSize = 16;

const models::Classifier& teacher() {
  static const auto model = testing::trained_tiny_teacher(kClasses, kSize);
  return model;
}

data::BatchLoader test_loader() {
  data::LoaderOptions o;
  o.batch_size = 200;
  o.workers = 0;
  return data::BatchLoader(testing::pattern_dataset(kClasses, 100, kSize, 99),
                           testing::pattern_preprocess(), o);
}

double accuracy(models::ClassifierImpl& model) {
  auto loader = test_loader();
  return eval::evaluate_model(model, loader).top1;
}

DataFreeOptions short_run(Method method) {
  DataFreeOptions o;
  o.method = method;
  o.epochs = 6;
  o.iterations = 40;
  o.batch_size = 32;
  o.warmup_epochs = 1;
  o.observe_epochs = 2;
  o.lr_q = 1e-3;
  o.schedule = LrSchedule{LrSchedule::Kind::MultiStep, {5}, 0.1};
  o.superposition = {2, 0.4};
  o.log_every = 10;
  return o;
}

models::Classifier copy_of_teacher() { return models::clone_model(*teacher()); }

TEST(DataFree, TeacherIsAccurate) { EXPECT_GE(accuracy(*copy_of_teacher()), 85.0); }

// The heart of the product: a short data-free run must clearly beat the naive 4-bit model (ranges
// calibrated on N(0, 1) noise). The inputs here are much narrower than N(0, 1) (see
// pattern_preprocess), so noise is a poor guess; the teacher's batch-norm statistics, which the
// generator learns to match, carry the information. If the generator, its losses, the range
// observers or the quantized model's training path were broken, the run would not get there.
// Checked for several seeds: short runs are noisy, and one lucky seed proves little.
TEST(DataFree, QimeraClearlyImprovesOverNaiveQuantization) {
  const auto naive = post_training_quantize(*teacher(), quant::QuantConfig{}, CalibrationOptions{},
                                            gaussian_batches(teacher()->spec(), 32, c10::kCPU, 1));
  const double naive_top1 = accuracy(*naive);
  for (uint64_t seed : {0, 1}) {
    at::manual_seed(seed);
    auto options = short_run(Method::Qimera);
    options.warmup_epochs = 2;
    options.lr_q = 1e-4;
    options.schedule = LrSchedule{LrSchedule::Kind::Constant, {}, 0.1};
    DataFreeTrainer trainer(copy_of_teacher(), options, c10::kCPU);
    TempDir dir;
    auto loader = test_loader();
    const auto result = trainer.run(dir.path(), false, &loader);
    const double final_top1 = result.final_epoch->test->top1;
    EXPECT_GE(final_top1, naive_top1 + 8.0)
        << "seed " << seed << ": naive " << naive_top1 << "%, after the run " << final_top1 << "%";
    // The generator learns: its images match the teacher's statistics far better and the teacher
    // recognizes more of them as their labels.
    const auto& first = result.history.front();
    EXPECT_LE(result.final_epoch->loss_bns, first.loss_bns / 10) << "seed " << seed;
    EXPECT_GE(result.final_epoch->teacher_agreement, first.teacher_agreement + 20.0) << "seed " << seed;
    // Q trains after the warm-up, and distillation makes progress.
    EXPECT_EQ(result.history[1].loss_q, 0.0);
    EXPECT_GT(result.history[2].loss_q, 0.0);
    EXPECT_LT(result.final_epoch->loss_q, result.history[2].loss_q) << "seed " << seed;
    // Roughly p of the batches were superposed.
    double share = 0;
    for (const auto& r : result.history) share += r.superposed_share;
    EXPECT_NEAR(share / static_cast<double>(result.history.size()), 0.4, 0.15);
    if (seed == 0) {
      EXPECT_TRUE(std::filesystem::exists(dir / "checkpoint.pt"));
      EXPECT_EQ(read_json(dir / "config.json")["options"]["method"], "qimera");
      const auto summary = read_json(dir / "result.json");
      EXPECT_DOUBLE_EQ(summary["final_epoch"]["test_top1"].get<double>(), final_top1);
      EXPECT_TRUE(summary.contains("best_epoch_selected_on_test_set"));
    }
  }
}

TEST(DataFree, GdfqTurnsOffQimerasAdditions) {
  auto o = short_run(Method::Gdfq);
  o.disentangle = true;
  o.embedding_init = generator::EmbeddingInit::Extracted;
  const auto e = o.effective();
  EXPECT_EQ(e.superposition.p, 0.0);
  EXPECT_FALSE(e.disentangle);
  EXPECT_EQ(e.embedding_init, generator::EmbeddingInit::Random);
  DataFreeTrainer trainer(copy_of_teacher(), o, c10::kCPU);
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(trainer.step(0).superposed);
}

TEST(DataFree, WarmupLeavesQuantizedWeightsAloneAndObservesRanges) {
  DataFreeTrainer trainer(copy_of_teacher(), short_run(Method::Qimera), c10::kCPU);
  auto q = trainer.quantized();
  const auto before = q->named_parameters()["output.weight"].clone();
  const auto range_before = q->named_buffers()["features.init_block.activ.observer_hi"].clone();
  trainer.begin_epoch(0);
  const auto losses = trainer.step(0);
  EXPECT_FALSE(losses.quantized_updated);
  EXPECT_TRUE(at::equal(before, q->named_parameters()["output.weight"]));
  EXPECT_FALSE(at::equal(range_before, q->named_buffers()["features.init_block.activ.observer_hi"]));
  trainer.begin_epoch(1);
  EXPECT_TRUE(trainer.step(1).quantized_updated);
  EXPECT_FALSE(at::equal(before, q->named_parameters()["output.weight"]));
  // From observe_epochs on, the ranges stay fixed.
  trainer.begin_epoch(2);
  const auto fixed = q->named_buffers()["features.init_block.activ.observer_hi"].clone();
  trainer.step(2);
  EXPECT_TRUE(at::equal(fixed, q->named_buffers()["features.init_block.activ.observer_hi"]));
}

TEST(DataFree, TeacherStaysFrozen) {
  auto p = copy_of_teacher();
  const auto before = p->named_parameters()["features.init_block.conv.weight"].clone();
  const auto running = p->named_buffers()["features.init_block.bn.running_mean"].clone();
  DataFreeTrainer trainer(p, short_run(Method::Qimera), c10::kCPU);
  trainer.begin_epoch(1);
  trainer.step(1);
  EXPECT_TRUE(at::equal(before, p->named_parameters()["features.init_block.conv.weight"]));
  EXPECT_TRUE(at::equal(running, p->named_buffers()["features.init_block.bn.running_mean"]));
}

std::vector<at::Tensor> weights_of(DataFreeTrainer& t) {
  std::vector<at::Tensor> out;
  for (const auto& p : t.quantized()->parameters()) out.push_back(p.detach().clone());
  for (const auto& b : t.quantized()->buffers()) out.push_back(b.detach().clone());
  for (const auto& p : t.generator()->parameters()) out.push_back(p.detach().clone());
  return out;
}

TEST(DataFree, ResumedRunEndsWithTheSameWeightsAsAnUninterruptedOne) {
  auto options = short_run(Method::Qimera);
  options.epochs = 3;
  options.iterations = 6;
  options.batch_size = 8;
  TempDir whole, parts;
  at::manual_seed(7);
  DataFreeTrainer uninterrupted(copy_of_teacher(), options, c10::kCPU);
  uninterrupted.run(whole.path(), false, nullptr);

  // The "killed" run: its first session only got through 2 epochs (the multi-step schedule does not
  // depend on the total, so a 2-epoch session trains those epochs exactly as the 3-epoch run does).
  auto first_session = options;
  first_session.epochs = 2;
  at::manual_seed(7);
  DataFreeTrainer first(copy_of_teacher(), first_session, c10::kCPU);
  first.run(parts.path(), false, nullptr);
  at::manual_seed(12345);  // a different process: nothing but the checkpoint carries over
  DataFreeTrainer resumed(copy_of_teacher(), options, c10::kCPU);
  const auto result = resumed.run(parts.path(), true, nullptr);
  EXPECT_EQ(result.history.size(), 3u);

  const auto a = weights_of(uninterrupted);
  const auto b = weights_of(resumed);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(at::equal(a[i], b[i])) << "tensor " << i;
}

TEST(DataFree, RefusesToOverwriteARun) {
  auto options = short_run(Method::Gdfq);
  options.epochs = 1;
  options.iterations = 1;
  options.batch_size = 4;
  TempDir dir;
  DataFreeTrainer(copy_of_teacher(), options, c10::kCPU).run(dir.path(), false, nullptr);
  DataFreeTrainer again(copy_of_teacher(), options, c10::kCPU);
  EXPECT_THROW(again.run(dir.path(), false, nullptr), Error);
}

TEST(DataFree, NonFiniteLossStopsWithAClearMessage) {
  auto options = short_run(Method::Qimera);
  options.warmup_epochs = 0;
  options.epochs = 2;
  options.iterations = 8;
  options.log_every = 2;
  options.batch_size = 8;
  options.lr_q = 1e30;  // the first update sends Q's weights to infinity
  TempDir dir;
  DataFreeTrainer trainer(copy_of_teacher(), options, c10::kCPU);
  try {
    trainer.run(dir.path(), false, nullptr);
    FAIL() << "a NaN loss went unnoticed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("NaN"), std::string::npos) << e.what();
  }
}

TEST(DataFree, NonFiniteLossRollsBackWithLowerLearningRates) {
  auto options = short_run(Method::Qimera);
  options.warmup_epochs = 0;
  options.epochs = 2;
  options.iterations = 8;
  options.log_every = 2;
  options.batch_size = 8;
  options.lr_q = 1e30;
  options.on_nan = NanPolicy::Rollback;
  options.rollback_lr_factor = 1e-36;  // one rollback brings lr_q to 1e-6
  TempDir dir;
  DataFreeTrainer trainer(copy_of_teacher(), options, c10::kCPU);
  const auto result = trainer.run(dir.path(), false, nullptr);
  EXPECT_EQ(result.history.size(), 2u);
  EXPECT_NEAR(result.history.front().lr_q, 1e-6, 1e-12);
  EXPECT_TRUE(std::isfinite(result.final_epoch->loss_q));
}

TEST(DataFree, OptionsAreValidated) {
  auto o = short_run(Method::Qimera);
  o.superposition.p = 1.5;
  EXPECT_THROW(o.validate(), Error);
  o = short_run(Method::Qimera);
  o.temperature = 0;
  EXPECT_THROW(o.validate(), Error);
  EXPECT_THROW(parse_method("zaq"), Error);
}

TEST(Presets, EveryPresetIsValidAndFindable) {
  for (const auto& preset : data_free_presets()) {
    DataFreeOptions o;
    preset.apply(o);
    EXPECT_NO_THROW(o.validate()) << preset.name;
    EXPECT_EQ(&find_preset(preset.name), &preset);
  }
  EXPECT_THROW(find_preset("reference-cifar11-4w4a"), Error);
  DataFreeOptions o;
  find_preset("reference-cifar100-4w4a").apply(o);
  EXPECT_EQ(o.superposition.k, 10);
  EXPECT_EQ(o.embedding_init, generator::EmbeddingInit::Extracted);
  EXPECT_EQ(o.quant.observer.kind, quant::ObserverKind::ReferenceEma);
  EXPECT_EQ(o.batch_size, 200);
}

}  // namespace
}  // namespace qimera::methods
