#include "qimera/data/dataset.h"

#include "qimera/core/error.h"

#include <ATen/ATen.h>
#include <fmt/ranges.h>

#include <algorithm>

namespace qimera::data {
namespace {

at::Tensor index_tensor(const std::vector<int64_t>& indices) {
  return at::from_blob(const_cast<int64_t*>(indices.data()), {static_cast<int64_t>(indices.size())},
                       at::kLong)
      .clone();
}

std::string shape_string(const at::Tensor& t) { return fmt::format("{}", t.sizes()); }

void check_images(const at::Tensor& images, const std::string& what) {
  require(images.defined(), "{}: no image tensor", what);
  require(images.scalar_type() == at::kByte, "{}: images must be uint8, got {}", what,
          std::string(c10::toString(images.scalar_type())));
  require(images.dim() == 4, "{}: images must be [N,C,H,W], got shape {}", what,
          shape_string(images));
}

void check_labels(const at::Tensor& labels, int64_t count, int64_t num_classes,
                  const std::string& what) {
  require(labels.defined() && labels.scalar_type() == at::kLong && labels.dim() == 1,
          "{}: labels must be a 1-d int64 tensor", what);
  require(labels.size(0) == count, "{}: {} images but {} labels", what, count, labels.size(0));
  require(num_classes > 0, "{}: the number of classes must be positive, got {}", what, num_classes);
  if (count == 0) return;
  const auto bad = at::logical_or(labels < 0, labels >= num_classes).nonzero();
  if (bad.size(0) > 0) {
    const int64_t index = bad[0][0].item<int64_t>();
    fail("{}: label {} of example {} is outside 0..{}", what, labels[index].item<int64_t>(), index,
         num_classes - 1);
  }
}

/// A view of another data set through an index list.
class SubsetDataset : public Dataset {
 public:
  SubsetDataset(std::shared_ptr<const Dataset> parent, std::vector<int64_t> indices)
      : parent_(std::move(parent)), indices_(std::move(indices)) {}

  int64_t size() const override { return static_cast<int64_t>(indices_.size()); }
  Example get(int64_t index) const override {
    check_index(index, size(), description());
    return parent_->get(indices_[static_cast<size_t>(index)]);
  }
  int64_t num_classes() const override { return parent_->num_classes(); }
  std::string description() const override {
    return fmt::format("{} examples of {}", indices_.size(), parent_->description());
  }
  std::vector<std::string> class_names() const override { return parent_->class_names(); }
  std::optional<Examples> gather(const std::vector<int64_t>& indices) const override {
    std::vector<int64_t> mapped(indices.size());
    for (size_t i = 0; i < indices.size(); ++i) {
      mapped[i] = indices_[static_cast<size_t>(indices[i])];
    }
    return parent_->gather(mapped);
  }

 private:
  std::shared_ptr<const Dataset> parent_;
  std::vector<int64_t> indices_;
};

}  // namespace

std::vector<std::string> Dataset::class_names() const {
  return numbered_class_names(num_classes());
}

std::optional<Examples> Dataset::gather(const std::vector<int64_t>&) const { return std::nullopt; }

TensorDataset::TensorDataset(at::Tensor images, at::Tensor labels, int64_t num_classes,
                             std::string description, std::vector<std::string> class_names)
    : num_classes_(num_classes),
      description_(std::move(description)),
      class_names_(std::move(class_names)) {
  check_images(images, description_);
  check_labels(labels, images.size(0), num_classes, description_);
  require(class_names_.empty() || static_cast<int64_t>(class_names_.size()) == num_classes,
          "{}: {} class names for {} classes", description_, class_names_.size(), num_classes);
  images_ = images.contiguous();
  labels_ = labels.contiguous();
}

int64_t TensorDataset::size() const { return images_.size(0); }

Example TensorDataset::get(int64_t index) const {
  check_index(index, size(), description_);
  return {images_[index], labels_.data_ptr<int64_t>()[index]};
}

std::vector<std::string> TensorDataset::class_names() const {
  return class_names_.empty() ? numbered_class_names(num_classes_) : class_names_;
}

std::optional<Examples> TensorDataset::gather(const std::vector<int64_t>& indices) const {
  const auto index = index_tensor(indices);
  return Examples{images_.index_select(0, index), labels_.index_select(0, index)};
}

std::shared_ptr<const Dataset> subset(std::shared_ptr<const Dataset> parent,
                                      std::vector<int64_t> indices) {
  require(parent != nullptr, "subset of a null data set");
  const int64_t size = parent->size();
  for (const int64_t index : indices) check_index(index, size, parent->description());
  return std::make_shared<SubsetDataset>(std::move(parent), std::move(indices));
}

std::vector<std::string> numbered_class_names(int64_t count) {
  std::vector<std::string> names;
  for (int64_t i = 0; i < count; ++i) names.push_back(std::to_string(i));
  return names;
}

void check_index(int64_t index, int64_t size, const std::string& what) {
  require(index >= 0 && index < size, "{}: index {} is out of range (size {})", what, index, size);
}

}  // namespace qimera::data
