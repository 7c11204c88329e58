#include "qimera/methods/collapse.h"

#include <fmt/format.h>

namespace qimera::methods {
namespace {

constexpr const char* kMeasures[] = {"test_top1", "q_agreement"};
constexpr double kWorkingFactor = 3.0;    // "was working": at least this times chance
constexpr double kCollapsedFactor = 1.5;  // "is at chance": at most this times chance

std::optional<double> measure_of(const EpochRecord& record, const std::string& measure) {
  if (measure == "test_top1") {
    if (record.test) return record.test->top1;
    return std::nullopt;
  }
  if (record.has(measure)) return record.value(measure);
  return std::nullopt;
}

}  // namespace

std::string Collapse::describe() const {
  return fmt::format(
      "epoch {}: {} fell to {:.2f}% (chance {:.2f}%; {:.2f}% at best, in epoch {}): the model was "
      "brought to chance (it predicts nearly one class), though every loss stayed finite",
      epoch, measure, after, chance, best, best_epoch);
}

std::optional<Collapse> find_collapse(const std::vector<EpochRecord>& history, const EpochRecord& record,
                                      int64_t classes) {
  if (classes < 1) return std::nullopt;
  const double chance = 100.0 / static_cast<double>(classes);
  for (const std::string measure : kMeasures) {
    const auto after = measure_of(record, measure);
    if (!after || !near_chance(*after, classes)) continue;
    std::optional<double> latest;
    Collapse c{record.epoch, measure, 0, 0, *after, chance};
    for (const auto& earlier : history) {
      const auto value = measure_of(earlier, measure);
      if (!value) continue;
      latest = value;
      if (*value > c.best) c.best = *value, c.best_epoch = earlier.epoch;
    }
    if (latest && !near_chance(*latest, classes) && c.best >= kWorkingFactor * chance) return c;
  }
  return std::nullopt;
}

bool near_chance(double percent, int64_t classes) {
  return classes >= 1 && percent <= kCollapsedFactor * 100.0 / static_cast<double>(classes);
}

std::vector<Collapse> collapses_in(const std::vector<EpochRecord>& history, int64_t classes) {
  std::vector<Collapse> found;
  std::vector<EpochRecord> earlier;
  for (const auto& record : history) {
    if (auto c = find_collapse(earlier, record, classes)) found.push_back(*c);
    earlier.push_back(record);
  }
  return found;
}

}  // namespace qimera::methods
