#include "qimera/methods/gdfq_family.h"

#include "qimera/core/error.h"
#include "qimera/io/safetensors.h"

#include <ATen/ATen.h>

#include <memory>

namespace qimera::methods {

GdfqOptions::GdfqOptions(generator::GeneratorArch arch, std::vector<generator::GeneratorArch> allowed) {
  generator.arch = arch;
  generator.allowed = std::move(allowed);
}

void GdfqOptions::describe(OptionVisitor& v) {
  GeneratorTrainingOptions::describe(v);
  generator_loss.describe(v);
  distillation.describe(v);
  real.describe(v);
}

void GdfqOptions::validate() const {
  GeneratorTrainingOptions::validate();
  generator_loss.validate();
  distillation.validate();
  real.validate();
}

Objective gdfq_generator_objective(const GdfqOptions& o) {
  return Objective("g", {{teacher_cross_entropy(), 1.0},
                         {batch_norm_statistics(), o.generator_loss.bns_weight}});
}

Objective gdfq_student_objective(const GdfqOptions& o) {
  return Objective("q", {{distillation(o.distillation.temperature, o.distillation.alpha), 1.0},
                         {student_cross_entropy(), 1.0}});
}

std::pair<at::Tensor, at::Tensor> read_real_samples(const std::string& path,
                                                     const models::ModelSpec& spec, c10::Device device) {
  at::Tensor images, labels;
  for (const auto& [name, tensor] : io::read_safetensors(path)) {
    if (name == "images") images = tensor;
    if (name == "labels") labels = tensor;
  }
  require(images.defined() && labels.defined(), "{}: real samples need tensors 'images' and 'labels'",
          path);
  require(images.dim() == 4 && images.size(1) == spec.in_channels && images.size(2) == spec.image_size &&
              images.size(3) == spec.image_size && images.is_floating_point() && images.size(0) >= 1,
          "{}: 'images' is {} {}, the teacher needs [N, {}, {}, {}] float", path, images.scalar_type(),
          images.sizes(), spec.in_channels, spec.image_size, spec.image_size);
  require(labels.dim() == 1 && labels.size(0) == images.size(0) && labels.scalar_type() == at::kLong,
          "{}: 'labels' must be int64 [{}], got {} {}", path, images.size(0), labels.scalar_type(),
          labels.sizes());
  require(labels.min().item<int64_t>() >= 0 && labels.max().item<int64_t>() < spec.num_classes,
          "{}: labels outside [0, {})", path, spec.num_classes);
  const auto targets = at::one_hot(labels, spec.num_classes).to(at::kFloat);
  return {images.to(at::kFloat).to(device), targets.to(device)};
}

std::unique_ptr<DataFreeTrainer> make_gdfq_family_trainer(const GdfqOptions& o,
                                                          const QimeraAdditions* additions,
                                                          const MixingOptions* mixing,
                                                          models::Classifier teacher,
                                                          c10::Device device) {
  const generator::SuperpositionOptions se =
      additions ? additions->superposition : generator::SuperpositionOptions{2, 0.0};
  auto make_source = [&](const models::ClassifierImpl& p) -> std::unique_ptr<ImageSource> {
    auto source = std::make_unique<GeneratorSource>(build_generator(o.generator, additions, p), se, device);
    if (!mixing) return source;
    return std::make_unique<MixingSource>(std::move(source), *mixing);
  };
  auto setup = make_setup(o, o.schedule);
  if (!o.real.path.empty()) {
    const auto real = read_real_samples(o.real.path, teacher->spec(), device);
    setup.real_images = real.first;
    setup.real_targets = real.second;
    const int64_t n = real.first.size(0);
    setup.real_per_batch = o.real.per_batch > 0 ? o.real.per_batch
                                                : (n + o.schedule.iterations - 1) / o.schedule.iterations;
  }
  return std::make_unique<DataFreeTrainer>(std::move(teacher), std::move(setup), make_source,
                                           gdfq_generator_objective(o), gdfq_student_objective(o), device);
}

MethodOutcome run_gdfq_family(const GdfqOptions& o, const QimeraAdditions* additions,
                              const MixingOptions* mixing, const MethodContext& context,
                              const std::string& label) {
  auto trainer = make_gdfq_family_trainer(o, additions, mixing, context.teacher, context.device);
  return train(*trainer, o.loop, context, label + " " + o.quant.short_name());
}

std::vector<PresetInfo> gdfq_family_presets(
    const std::function<nlohmann::json(const PaperSetting*)>& extra) {
  std::vector<PresetInfo> presets{
      {"fmnist-short", kFmnistShortDescription, merge(fmnist_short_schedule(), extra(nullptr))},
      {"fmnist-short-3bit", kFmnistShort3bitDescription,
       merge(fmnist_short_3bit_schedule(), extra(nullptr))}};
  for (const auto& s : paper_settings()) {
    presets.push_back({s.name, "The reference's run script: " + s.description,
                       merge(reference_schedule(s), extra(&s))});
  }
  return presets;
}

}  // namespace qimera::methods
