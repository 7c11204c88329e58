#include "qimera/methods/ptq.h"

#include "qimera/core/error.h"
#include "qimera/models/zoo.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

namespace qimera::methods {

BatchSource gaussian_batches(const models::ModelSpec& spec, int64_t batch_size, c10::Device device,
                             uint64_t seed) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  return [=]() mutable {
    // Drawn on the CPU so the values do not depend on the device.
    return at::randn({batch_size, spec.in_channels, spec.image_size, spec.image_size}, generator)
        .to(device);
  };
}

models::Classifier post_training_quantize(const models::ClassifierImpl& teacher,
                                          quant::QuantConfig config,
                                          const CalibrationOptions& calibration,
                                          const BatchSource& source) {
  require(calibration.batches >= 1, "calibration needs at least one batch");
  config.observer = calibration.observer;
  auto q = models::clone_model(teacher);
  quant::convert(*q, config);
  q->eval();
  at::NoGradGuard no_grad;
  quant::set_observing(*q, true);
  for (int64_t i = 0; i < calibration.batches; ++i) q->forward(source());
  quant::set_observing(*q, false);
  return q;
}

models::Classifier naive_quantize(const models::ClassifierImpl& teacher, const quant::QuantConfig& config,
                                  c10::Device device, uint64_t seed) {
  return post_training_quantize(teacher, config, CalibrationOptions{},
                                gaussian_batches(teacher.spec(), 64, device, seed + 1));
}

}  // namespace qimera::methods
