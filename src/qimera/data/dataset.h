// The data set abstraction every loader produces and every consumer (evaluation, teacher training,
// calibration) reads: labelled uint8 images, fetched one at a time by index.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace qimera::data {

/// One labelled image: uint8 [C,H,W] and its class index.
struct Example {
  at::Tensor image;
  int64_t label = 0;
};

/// Several examples of the same size, stacked: uint8 [N,C,H,W] and int64 [N].
struct Examples {
  at::Tensor images;
  at::Tensor labels;
};

/// Read-only indexed data set. Implementations must allow get() from several threads at once.
class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  /// The image may share memory with the data set: treat it as read-only.
  virtual Example get(int64_t index) const = 0;
  virtual int64_t num_classes() const = 0;
  /// One line for logs and reports, e.g. "CIFAR-10 test (10000 images) from /data/cifar-10".
  virtual std::string description() const = 0;
  /// num_classes() names; "0", "1", ... unless the data set knows better.
  virtual std::vector<std::string> class_names() const;
  /// A batch in one operation when the data is in memory with one image size, else nullopt
  /// (the caller then falls back to get()). Indices are assumed valid.
  virtual std::optional<Examples> gather(const std::vector<int64_t>& indices) const;
};

/// An in-memory data set: uint8 images [N,C,H,W] and int64 labels [N] in 0..num_classes-1.
class TensorDataset : public Dataset {
 public:
  /// Validates shapes, dtypes, label range and the number of class names (empty = "0", "1", ...).
  TensorDataset(at::Tensor images, at::Tensor labels, int64_t num_classes, std::string description,
                std::vector<std::string> class_names = {});

  int64_t size() const override;
  Example get(int64_t index) const override;
  int64_t num_classes() const override { return num_classes_; }
  std::string description() const override { return description_; }
  std::vector<std::string> class_names() const override;
  std::optional<Examples> gather(const std::vector<int64_t>& indices) const override;

  const at::Tensor& images() const { return images_; }
  const at::Tensor& labels() const { return labels_; }

 private:
  at::Tensor images_;
  at::Tensor labels_;
  int64_t num_classes_;
  std::string description_;
  std::vector<std::string> class_names_;
};

/// The examples of `parent` at `indices` (in that order, repeats allowed); indices are validated.
std::shared_ptr<const Dataset> subset(std::shared_ptr<const Dataset> parent,
                                      std::vector<int64_t> indices);

/// "0", "1", ..., count-1.
std::vector<std::string> numbered_class_names(int64_t count);

/// Throws Error unless 0 <= index < size; `what` names the data set in the message.
void check_index(int64_t index, int64_t size, const std::string& what);

}  // namespace qimera::data
