// A model that training brought to chance. A Q that collapses (every image one class) keeps finite
// losses, so the non-finite check never sees it: a run could end "successfully" at 10% top-1 on ten
// classes with nothing in its log to say so. This finds the epoch where that happened.
#pragma once

#include "qimera/methods/run_loop.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace qimera::methods {

/// A measure of the trained model, in percent, that can fall to chance: top-1 on the test data
/// ("test_top1") and Q's agreement with P on the images Q trains on ("q_agreement", which needs no
/// test data).
struct Collapse {
  int64_t epoch = 0;  // 1-based, the epoch that reached chance
  std::string measure;
  double best = 0;  // the measure's highest value in an earlier epoch
  int64_t best_epoch = 0;
  double after = 0;
  double chance = 0;  // 100 / classes

  /// "epoch 6: test_top1 fell to 10.34% (chance 10.00%; 95.02% at best, in epoch 1)" and what it
  /// means.
  std::string describe() const;
};

/// Whether `record` is the epoch where the model reached chance: a measure that stood at 3 x chance
/// or more in some earlier epoch of `history`, and above 1.5 x chance in the latest earlier epoch
/// reporting it, stands at 1.5 x chance or less in `record`. Comparing with the best rather than
/// the latest epoch catches a fall spread over epochs (an epoch's mean agreement lags: GDFQ +
/// Mixup's Q averaged 21% agreement over the epoch it collapsed in). A model never above chance
/// (a naive 2-bit start) is not called collapsed, nor is an epoch after the one that reached
/// chance. With fewer than 3 classes nothing can be 3 x chance, so nothing is reported.
std::optional<Collapse> find_collapse(const std::vector<EpochRecord>& history, const EpochRecord& record,
                                      int64_t classes);

/// Whether `percent` is at chance for `classes` classes as the rule above counts it (1.5 x chance
/// or less).
bool near_chance(double percent, int64_t classes);

/// Every collapse in a finished history, in epoch order.
std::vector<Collapse> collapses_in(const std::vector<EpochRecord>& history, int64_t classes);

}  // namespace qimera::methods
