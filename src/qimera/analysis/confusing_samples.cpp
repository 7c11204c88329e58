#include "qimera/analysis/confusing_samples.h"

#include "qimera/core/error.h"
#include "qimera/data/loader.h"
#include "qimera/io/safetensors.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <fmt/format.h>

#include <algorithm>
#include <random>

namespace qimera::analysis {

namespace {

// A uniform random sample of at most `capacity` items of a stream (reservoir sampling).
class Reservoir {
 public:
  explicit Reservoir(int64_t capacity) : capacity_(capacity) {}
  void offer(const at::Tensor& image, std::mt19937_64& rng) {
    ++seen_;
    if (static_cast<int64_t>(items_.size()) < capacity_) {
      items_.push_back(image.clone());
      return;
    }
    const int64_t j = std::uniform_int_distribution<int64_t>(0, seen_ - 1)(rng);
    if (j < capacity_) items_[j] = image.clone();
  }
  /// `n` of the kept items, a uniform random subset of the stream.
  std::vector<at::Tensor> take(int64_t n, std::mt19937_64& rng) {
    std::shuffle(items_.begin(), items_.end(), rng);
    return {items_.begin(), items_.begin() + std::min<int64_t>(n, items_.size())};
  }
  int64_t seen() const { return seen_; }

 private:
  int64_t capacity_;
  int64_t seen_ = 0;
  std::vector<at::Tensor> items_;
};

std::pair<at::Tensor, at::Tensor> stack(const std::vector<std::vector<at::Tensor>>& by_class,
                                        const at::Tensor& like) {
  std::vector<at::Tensor> images;
  std::vector<int64_t> labels;
  for (size_t c = 0; c < by_class.size(); ++c) {
    for (const auto& image : by_class[c]) {
      images.push_back(image);
      labels.push_back(static_cast<int64_t>(c));
    }
  }
  if (images.empty()) return {at::empty({0, like.size(0), like.size(1), like.size(2)}), at::empty({0}, at::kLong)};
  return {at::stack(images), at::tensor(labels)};
}

}  // namespace

Selection select_confusing(models::ClassifierImpl& teacher, data::BatchLoader& loader,
                           const SelectionOptions& options) {
  require(options.max_confidence > 0 && options.max_confidence <= 1,
          "--max-confidence must be in (0, 1], got {}", options.max_confidence);
  require(options.per_class >= 1, "--per-class must be positive, got {}", options.per_class);
  const c10::NoGradGuard no_grad;
  const int64_t classes = teacher.spec().num_classes;
  std::mt19937_64 rng(options.seed);
  std::vector<Reservoir> confusing(classes, Reservoir(options.per_class));
  std::vector<Reservoir> confident(classes, Reservoir(options.per_class));
  Selection s;
  at::Tensor like;
  loader.start_epoch(0);
  while (auto batch = loader.next()) {
    const auto top = at::softmax(teacher.forward(batch->images), 1).amax(1).cpu();
    if (s.below_threshold.empty()) s.below_threshold.assign(kSurveyThresholds.size(), 0);
    for (size_t t = 0; t < kSurveyThresholds.size(); ++t) {
      s.below_threshold[t] += top.lt(kSurveyThresholds[t]).sum().item<int64_t>();
    }
    const auto images = batch->images.cpu();
    const auto labels = batch->labels.cpu();
    for (int64_t i = 0; i < images.size(0); ++i) {
      const int64_t c = labels[i].item<int64_t>();
      require(c >= 0 && c < classes, "a label {} outside the teacher's {} classes", c, classes);
      auto& pool = top[i].item<double>() < options.max_confidence ? confusing[c] : confident[c];
      pool.offer(images[i], rng);
    }
    s.scanned += images.size(0);
    if (!like.defined()) like = images[0];
  }
  require(like.defined(), "the data set is empty: nothing to select from");
  std::vector<std::vector<at::Tensor>> taken(classes), matched(classes);
  for (int64_t c = 0; c < classes; ++c) {
    s.available.push_back(confusing[c].seen());
    taken[c] = confusing[c].take(options.per_class, rng);
    matched[c] = confident[c].take(static_cast<int64_t>(taken[c].size()), rng);
  }
  std::tie(s.confusing_images, s.confusing_labels) = stack(taken, like);
  std::tie(s.unconfusing_images, s.unconfusing_labels) = stack(matched, like);
  return s;
}

nlohmann::json Selection::to_json(const SelectionOptions& options) const {
  auto counts = [](const at::Tensor& labels, size_t classes) {
    std::vector<int64_t> n(classes, 0);
    for (int64_t i = 0; i < labels.size(0); ++i) ++n[labels[i].item<int64_t>()];
    return n;
  };
  nlohmann::json survey = nlohmann::json::object();
  for (size_t t = 0; t < below_threshold.size(); ++t) {
    survey[fmt::format("{:g}", kSurveyThresholds[t])] = below_threshold[t];
  }
  return {{"max_confidence", options.max_confidence},
          {"images_below_threshold", survey},
          {"per_class", options.per_class},
          {"seed", options.seed},
          {"scanned", scanned},
          {"confusing_available_per_class", available},
          {"confusing_taken_per_class", counts(confusing_labels, available.size())},
          {"unconfusing_taken_per_class", counts(unconfusing_labels, available.size())},
          {"confusing", confusing_images.size(0)},
          {"unconfusing", unconfusing_images.size(0)},
          {"definition",
           "confusing: the teacher's highest softmax probability below max_confidence; unconfusing: "
           "at least max_confidence, drawn at random per class as many as confusing ones were taken; "
           "classes are the data set's labels"}};
}

void write_real_samples(const std::filesystem::path& path, const at::Tensor& images,
                        const at::Tensor& labels) {
  io::write_safetensors(path, {{"images", images.contiguous()}, {"labels", labels.contiguous()}});
}

}  // namespace qimera::analysis
