// Post-training quantization: convert P, calibrate the activation ranges on a few batches, done.
// The floor every data-free method must beat. Calibration data is real data when the user has it,
// else Gaussian noise in the network's (normalized) input space: the naive data-free baseline.
#pragma once

#include "qimera/models/classifier.h"
#include "qimera/quant/convert.h"

#include <c10/core/Device.h>

#include <functional>

namespace qimera::methods {

/// Produces calibration input batches ([N, C, S, S], normalized, on the model's device).
using BatchSource = std::function<at::Tensor()>;

/// N(0, 1) batches shaped for `spec`, from a generator seeded with `seed` (reproducible, and
/// independent of the global random state).
BatchSource gaussian_batches(const models::ModelSpec& spec, int64_t batch_size, c10::Device device,
                             uint64_t seed);

struct CalibrationOptions {
  int64_t batches = 8;
  quant::ObserverOptions observer{quant::ObserverKind::MinMax, 0.9, 99.99};
};

/// Q = P converted by `config` (its observer replaced by calibration.observer), activation ranges
/// observed on `calibration.batches` batches of `source`, then fixed. P is left untouched.
models::Classifier post_training_quantize(const models::ClassifierImpl& teacher,
                                          quant::QuantConfig config,
                                          const CalibrationOptions& calibration,
                                          const BatchSource& source);

/// The naive floor of every data-free run: `config` with min/max ranges from 8 batches of 64 N(0, 1)
/// images (drawn from a generator seeded with seed + 1), no training.
models::Classifier naive_quantize(const models::ClassifierImpl& teacher, const quant::QuantConfig& config,
                                  c10::Device device, uint64_t seed);
inline constexpr const char* kNaiveNote = "no training: ranges from 8 batches of N(0,1) noise";

}  // namespace qimera::methods
