#include "qimera/data/loader.h"

#include "qimera/core/error.h"
#include "qimera/data/random.h"

#include <ATen/ATen.h>
#include <fmt/ranges.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <numeric>
#include <thread>

namespace qimera::data {
namespace {

constexpr uint64_t kShuffleStream = 0x73687566;

/// A batch as the workers leave it: normalized already when the device is the CPU, else uint8
/// (a quarter of the bytes to transfer) and pinned for an asynchronous copy.
struct HostBatch {
  at::Tensor images;
  at::Tensor labels;
};

struct Slot {
  HostBatch batch;
  std::exception_ptr error;
};

at::Tensor long_tensor(const std::vector<int64_t>& values) {
  return at::from_blob(const_cast<int64_t*>(values.data()), {static_cast<int64_t>(values.size())},
                       at::kLong)
      .clone();
}

}  // namespace

struct BatchLoader::Impl {
  std::shared_ptr<const Dataset> dataset;
  Preprocess preprocess;
  LoaderOptions options;
  Normalizer normalizer;
  int64_t batches = 0;
  int64_t samples = 0;

  // The current epoch; fixed while its workers run.
  int64_t epoch = 0;
  bool started = false;
  std::vector<int64_t> order;
  std::exception_ptr failure;

  std::mutex mutex;
  std::condition_variable work_ready;   // workers wait for room in the prefetch window
  std::condition_variable batch_ready;  // the consumer waits for the next batch in order
  bool stop = false;
  int64_t next_claim = 0;
  int64_t delivered = 0;
  std::map<int64_t, Slot> ready;
  std::vector<std::thread> threads;

  Impl(std::shared_ptr<const Dataset> dataset_in, Preprocess preprocess_in,
       LoaderOptions options_in)
      : dataset(std::move(dataset_in)),
        preprocess(std::move(preprocess_in)),
        options(options_in),
        normalizer(preprocess, options.device) {
    require(dataset != nullptr, "BatchLoader: no data set");
    require(options.batch_size > 0, "BatchLoader: batch_size must be positive, got {}",
            options.batch_size);
    require(options.workers >= 0, "BatchLoader: workers must not be negative");
    require(options.prefetch >= 1, "BatchLoader: prefetch must be at least 1");
    require(options.augment.crop_padding >= 0, "BatchLoader: crop_padding must not be negative");
    const int64_t n = dataset->size();
    batches = options.drop_last ? n / options.batch_size
                                : (n + options.batch_size - 1) / options.batch_size;
    samples = options.drop_last ? batches * options.batch_size : n;
  }

  ~Impl() { stop_workers(); }

  std::vector<int64_t> epoch_order(int64_t e) const {
    if (options.shuffle) {
      return random_permutation(
          dataset->size(), derive_seed({kShuffleStream, options.seed, static_cast<uint64_t>(e)}));
    }
    std::vector<int64_t> identity(static_cast<size_t>(dataset->size()));
    std::iota(identity.begin(), identity.end(), int64_t{0});
    return identity;
  }

  /// The fast path: in-memory data of one size, one index_select per batch.
  std::optional<Examples> gather(const std::vector<int64_t>& indices) const {
    if (has_geometry(preprocess)) return std::nullopt;
    auto examples = dataset->gather(indices);
    if (examples && preprocess.grey_to_rgb) examples->images = grey_to_rgb(examples->images);
    return examples;
  }

  Examples load_one_by_one(const std::vector<int64_t>& indices) const {
    std::vector<at::Tensor> images;
    std::vector<int64_t> labels;
    for (const int64_t index : indices) {
      Example example = dataset->get(index);
      images.push_back(apply_geometry(preprocess, example.image));
      labels.push_back(example.label);
      require(images.back().sizes() == images.front().sizes(),
              "{}: example {} has shape {} but example {} has {}; images of different sizes need "
              "resize and center_crop in the preprocessing",
              dataset->description(), index, images.back().sizes(), indices.front(),
              images.front().sizes());
    }
    return {at::stack(images), long_tensor(labels)};
  }

  at::Tensor augment(const at::Tensor& images, int64_t first_position) const {
    std::vector<at::Tensor> out;
    for (int64_t i = 0; i < images.size(0); ++i) {
      out.push_back(
          augment_image(images[i], options.augment, options.seed, epoch, first_position + i));
    }
    return at::stack(out);
  }

  HostBatch assemble(int64_t batch) const {
    const int64_t begin = batch * options.batch_size;
    const int64_t end = std::min<int64_t>(begin + options.batch_size, order.size());
    const std::vector<int64_t> indices(order.begin() + begin, order.begin() + end);
    auto gathered = gather(indices);
    Examples examples = gathered ? std::move(*gathered) : load_one_by_one(indices);
    if (is_active(options.augment)) examples.images = augment(examples.images, begin);
    if (options.device.is_cpu()) return {normalizer(examples.images), examples.labels};
    if (options.device.is_cuda()) {
      return {examples.images.pin_memory(), examples.labels.pin_memory()};
    }
    return {examples.images, examples.labels};
  }

  Slot assemble_slot(int64_t batch) const {
    Slot slot;
    try {
      slot.batch = assemble(batch);
    } catch (...) {
      slot.error = std::current_exception();
    }
    return slot;
  }

  void worker_loop() {
    for (;;) {
      int64_t batch = 0;
      {
        std::unique_lock<std::mutex> lock(mutex);
        work_ready.wait(lock, [&] {
          return stop || next_claim >= batches || next_claim < delivered + options.prefetch;
        });
        if (stop || next_claim >= batches) return;
        batch = next_claim++;
      }
      Slot slot = assemble_slot(batch);
      {
        std::lock_guard<std::mutex> lock(mutex);
        ready.emplace(batch, std::move(slot));
      }
      batch_ready.notify_all();
    }
  }

  void start_workers() {
    const auto count = std::min<int64_t>(options.workers, batches);
    for (int64_t i = 0; i < count; ++i) threads.emplace_back([this] { worker_loop(); });
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stop = true;
    }
    work_ready.notify_all();
    for (auto& thread : threads) thread.join();
    threads.clear();
  }

  void start_epoch(int64_t e) {
    stop_workers();
    epoch = e;
    order = epoch_order(e);
    started = true;
    failure = nullptr;
    stop = false;
    next_claim = 0;
    delivered = 0;
    ready.clear();
    start_workers();
  }

  Slot take_next() {
    if (threads.empty()) return assemble_slot(delivered++);
    std::unique_lock<std::mutex> lock(mutex);
    batch_ready.wait(lock, [&] { return ready.count(delivered) > 0; });
    auto node = ready.extract(delivered);
    ++delivered;
    lock.unlock();
    work_ready.notify_all();
    return std::move(node.mapped());
  }

  Batch to_device(HostBatch host) const {
    if (options.device.is_cpu()) return {std::move(host.images), std::move(host.labels)};
    auto images = host.images.to(options.device, host.images.scalar_type(), /*non_blocking=*/true);
    auto labels = host.labels.to(options.device, at::kLong, /*non_blocking=*/true);
    return {normalizer(images), labels};
  }

  std::optional<Batch> next() {
    if (!started) start_epoch(0);
    if (failure) std::rethrow_exception(failure);
    if (delivered >= batches) return std::nullopt;
    Slot slot = take_next();
    if (slot.error) {
      failure = slot.error;
      stop_workers();
      std::rethrow_exception(failure);
    }
    return to_device(std::move(slot.batch));
  }
};

BatchLoader::BatchLoader(std::shared_ptr<const Dataset> dataset, Preprocess preprocess,
                         LoaderOptions options)
    : impl_(std::make_unique<Impl>(std::move(dataset), std::move(preprocess), options)) {}

BatchLoader::~BatchLoader() = default;

int64_t BatchLoader::batches_per_epoch() const { return impl_->batches; }

int64_t BatchLoader::samples_per_epoch() const { return impl_->samples; }

void BatchLoader::start_epoch(int64_t epoch) { impl_->start_epoch(epoch); }

std::optional<Batch> BatchLoader::next() { return impl_->next(); }

std::vector<int64_t> BatchLoader::epoch_order(int64_t epoch) const {
  return impl_->epoch_order(epoch);
}

}  // namespace qimera::data
