// The data-free training iteration every generator- or bank-based method shares. A method assembles
// it from parts: the image source (a generator, a mixing stage over one, or an image bank), what G
// and Q minimize (objectives.h), and the order of updates. The epoch loop around it is run_loop.h's.
//
//   generator first (GDFQ, Qimera, Mixup, Cutmix, ZeroQ fine-tuning): draw a batch; one G step on
//     it; then Q steps on the same images, detached (Q only observes ranges during warm-up).
//   student first (ZAQ, Qimera + ZAQ): `student_steps` Q steps, each on a fresh batch drawn
//     without gradients; then one G step on a fresh batch, through P and Q.
#pragma once

#include "qimera/methods/data_free_options.h"
#include "qimera/methods/image_source.h"
#include "qimera/methods/objectives.h"
#include "qimera/methods/run_loop.h"
#include "qimera/models/classifier.h"
#include "qimera/models/precision.h"

#include <c10/core/Device.h>

#include <functional>
#include <memory>

namespace torch::optim {
class Adam;
class SGD;
}  // namespace torch::optim

namespace qimera::methods {

struct IterationPlan {
  enum class Order { GeneratorFirst, StudentFirst };
  Order order = Order::GeneratorFirst;
  int64_t student_steps = 1;  // Q updates per iteration
  // ZAQ's public code trains Q with its batch norms in train mode (they use and update the
  // synthetic batch's statistics); this project's protocol keeps them in eval mode.
  bool student_bn_train = false;
};

/// Everything the trainer needs besides the parts.
struct DataFreeSetup {
  quant::QuantConfig quant;
  int64_t epochs = 400;  // for schedules that depend on the total (cosine)
  DataFreeSchedule schedule;
  StudentOptimizer student;
  GeneratorOptimizer generator;
  IterationPlan plan;
  // Real images appended to every Q batch (the paper's Table 1), `real_per_batch` at a time,
  // cycling; undefined for synthetic images only.
  at::Tensor real_images, real_targets;
  int64_t real_per_batch = 0;
  // A quantized.json whose activation ranges Q takes at the start and keeps (schedule.observe_epochs
  // must then be 0); empty: the ranges are observed.
  std::string act_ranges_from;
  bool channels_last = false;  // P, Q and G store 4-D weights (so activations) channels-last
  // G's and P's arithmetic (Q's is always float32).
  models::Precision generator_precision = models::Precision::Float32;
  models::Precision teacher_precision = models::Precision::Float32;
};

/// Marks the end of a phase of an iteration; the benchmark passes one (and synchronises in it).
using PhaseMarker = std::function<void(const char* phase)>;

class DataFreeTrainer : public Trainable {
 public:
  using SourceFactory = std::function<std::unique_ptr<ImageSource>(const models::ClassifierImpl& teacher)>;

  /// `teacher` is P (frozen here: eval mode, no gradients). Q is a copy of P converted by
  /// setup.quant, unless `student` is given (an already calibrated Q). The source is made after Q,
  /// so a seeded run draws its random initializations in a fixed order.
  DataFreeTrainer(models::Classifier teacher, DataFreeSetup setup, const SourceFactory& make_source,
                  Objective generator_objective, Objective student_objective, c10::Device device,
                  models::Classifier student = nullptr);
  ~DataFreeTrainer() override;

  int64_t iterations(int64_t epoch) override { return setup_.schedule.iterations; }
  std::vector<std::pair<std::string, double>> begin_epoch(int64_t epoch, double lr_scale) override;
  void iteration(int64_t epoch, MetricSums& metrics) override { iteration(epoch, metrics, nullptr); }
  /// One iteration, calling `mark` at the end of each phase (for the benchmark's breakdown).
  void iteration(int64_t epoch, MetricSums& metrics, const PhaseMarker& mark);
  void end_epoch(int64_t epoch) override;
  TrainingState state() override;
  models::ClassifierImpl& evaluated() override { return *student_; }

  models::Classifier teacher() const { return teacher_; }
  models::Classifier quantized() const { return student_; }
  generator::Generator generator() const { return source_->generator(); }
  ImageSource& source() { return *source_; }
  const DataFreeSetup& setup() const { return setup_; }
  /// The assembled parts: the image source (with the generator's options), both objectives and the
  /// update order.
  nlohmann::json parts() const;

 private:
  void generator_step(const TrainingBatch& batch, MetricSums& metrics, const PhaseMarker& mark,
                      at::Tensor* teacher_logits);
  void student_step(const TrainingBatch& batch, int64_t epoch, at::Tensor teacher_logits,
                    MetricSums& metrics, const PhaseMarker& mark);
  /// P's traced forward (in setup.teacher_precision), every recorded tensor float32.
  models::ForwardTrace teacher_trace(const at::Tensor& images, const Needs& needs);
  /// The source's batch (G's forward in setup.generator_precision), images float32.
  TrainingBatch draw(int64_t n, bool for_generator);
  /// The next real images for a Q batch (cycling through the set).
  std::pair<at::Tensor, at::Tensor> next_real();
  int64_t real_cursor_ = 0;

  DataFreeSetup setup_;
  c10::Device device_;
  models::Classifier teacher_, student_;
  std::unique_ptr<ImageSource> source_;
  Objective generator_objective_, student_objective_;
  std::unique_ptr<torch::optim::Adam> optimizer_g_;
  std::unique_ptr<torch::optim::SGD> optimizer_q_;
};

}  // namespace qimera::methods
