// Named settings shared by the methods' presets: the bundled model's short schedule and the paper's
// settings (the reference implementation's run scripts, results.md). A preset is a flat patch of
// option values; each method builds its own from these parts, so one preset name means the same
// setting in every method and runs can be compared side by side.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace qimera::methods {

/// "fmnist-short": 8 epochs x 150 iterations of batch 64, 2 warm-up and 2 range-observing epochs
/// (percentile observer), both learning rates 1e-3, x0.1 at epoch 6.
nlohmann::json fmnist_short_schedule();
inline constexpr const char* kFmnistShortDescription =
    "Short schedule for the bundled Fashion-MNIST ResNet-20: 8 epochs x 150 iterations of batch 64; "
    "2 warm-up epochs train only the generator while activation ranges follow its images (percentile "
    "observer); Q's learning rate 1e-3, x0.1 at epoch 6";

/// "fmnist-short-3bit": the short schedule at 3w3a with the flags that measured best there for GDFQ
/// and Qimera (docs/results.md): Q lr 1e-4, mse activation ranges, the clipped straight-through
/// gradient. Percentile ranges cost Qimera 4.5 points at 3 bits; the unclipped STE broke runs.
nlohmann::json fmnist_short_3bit_schedule();
inline constexpr const char* kFmnistShort3bitDescription =
    "fmnist-short at 3w3a with Q's learning rate 1e-4, mse activation ranges and the clipped "
    "straight-through gradient (measured best for GDFQ and Qimera at 3 bits; docs/results.md)";

/// One of the paper's settings (results.md, last table).
struct PaperSetting {
  std::string name;         // "reference-cifar10-4w4a", ...
  std::string description;  // "CIFAR-10 ResNet-20 4w4a"
  bool imagenet;
  int bits;
  int64_t k;           // Qimera's K
  double p;            // Qimera's p
  bool extracted;      // EEI
};
const std::vector<PaperSetting>& paper_settings();

/// The reference's schedule for a setting: 400 x 200 iterations, x0.1 at 100/200/300, its EMA
/// observer, G's Adam (1e-3, betas 0.5 / 0.999), Q's SGD (Nesterov, 0.9, 1e-4); CIFAR: batch 200,
/// Q lr 1e-4, 4 warm-up epochs; ImageNet: batch 16, Q lr 1e-6, 50 warm-up epochs.
nlohmann::json reference_schedule(const PaperSetting& setting);

/// Qimera's per-setting K, p and embedding initialization, DM off (as the reference's scripts).
nlohmann::json qimera_setting(const PaperSetting& setting);

/// a with b's keys added (b wins).
nlohmann::json merge(nlohmann::json a, const nlohmann::json& b);

}  // namespace qimera::methods
