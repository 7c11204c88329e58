#include "qimera/data/loader.h"

#include "qimera/core/error.h"
#include "qimera/data/augment.h"
#include "qimera/data/random.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <numeric>
#include <set>
#include <thread>

namespace qimera::data {
namespace {
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

/// N images [1,2,3] whose pixels all hold their own index (N <= 256), labelled index % 7.
std::shared_ptr<TensorDataset> numbered_mod7(int64_t n) {
  auto images = at::arange(n, at::kLong).to(at::kByte).view({n, 1, 1, 1}).expand({n, 1, 2, 3});
  return std::make_shared<TensorDataset>(images.contiguous(), at::arange(n, at::kLong) % 7, 7,
                                         "numbered");
}

/// Forwards get() but has no gather(): forces the per-sample path.
class PerSample : public Dataset {
 public:
  explicit PerSample(std::shared_ptr<const Dataset> inner, int64_t fail_at = -1,
                     std::chrono::milliseconds delay = {})
      : inner_(std::move(inner)), fail_at_(fail_at), delay_(delay) {}
  int64_t size() const override { return inner_->size(); }
  Example get(int64_t index) const override {
    if (delay_.count() > 0) std::this_thread::sleep_for(delay_);
    if (index == fail_at_) fail("broken example {} in test.bin", index);
    return inner_->get(index);
  }
  int64_t num_classes() const override { return inner_->num_classes(); }
  std::string description() const override { return "per-sample"; }

 private:
  std::shared_ptr<const Dataset> inner_;
  int64_t fail_at_;
  std::chrono::milliseconds delay_;
};

LoaderOptions options(int64_t batch_size, bool shuffle, int workers = 2) {
  LoaderOptions o;
  o.batch_size = batch_size;
  o.shuffle = shuffle;
  o.workers = workers;
  o.seed = 17;
  return o;
}

/// The dataset indices a batch holds, read back from the "none" normalization (x / 255).
std::vector<int64_t> indices_of(const Batch& batch) {
  const auto index =
      (batch.images.select(1, 0).select(1, 0).select(1, 0) * 255).round().to(at::kLong);
  return {index.data_ptr<int64_t>(), index.data_ptr<int64_t>() + index.numel()};
}

std::vector<std::vector<int64_t>> epoch_indices(BatchLoader& loader, int64_t epoch) {
  loader.start_epoch(epoch);
  std::vector<std::vector<int64_t>> batches;
  while (auto batch = loader.next()) batches.push_back(indices_of(*batch));
  return batches;
}

std::vector<int64_t> flat(const std::vector<std::vector<int64_t>>& batches) {
  std::vector<int64_t> out;
  for (const auto& b : batches) out.insert(out.end(), b.begin(), b.end());
  return out;
}

TEST(BatchLoader, EverySampleOncePerEpoch) {
  BatchLoader loader(numbered_mod7(103), preprocess_preset("none"), options(10, true));
  EXPECT_EQ(loader.batches_per_epoch(), 11);
  EXPECT_EQ(loader.samples_per_epoch(), 103);
  const auto batches = epoch_indices(loader, 0);
  ASSERT_EQ(batches.size(), 11u);
  EXPECT_EQ(batches.back().size(), 3u);
  auto all = flat(batches);
  EXPECT_NE(all, loader.epoch_order(1));
  EXPECT_EQ(all, loader.epoch_order(0));
  std::sort(all.begin(), all.end());
  std::vector<int64_t> expected(103);
  std::iota(expected.begin(), expected.end(), 0);
  EXPECT_EQ(all, expected);
}

TEST(BatchLoader, BatchContents) {
  BatchLoader loader(numbered_mod7(5), preprocess_preset("none"), options(4, false));
  auto batch = loader.next();  // starts epoch 0 by itself
  ASSERT_TRUE(batch.has_value());
  EXPECT_EQ(batch->images.scalar_type(), at::kFloat);
  EXPECT_EQ(batch->images.sizes(), (std::vector<int64_t>{4, 1, 2, 3}));
  EXPECT_EQ(batch->labels.scalar_type(), at::kLong);
  EXPECT_TRUE(batch->labels.equal(at::tensor(std::vector<int64_t>{0, 1, 2, 3})));
  EXPECT_EQ(batch->images[3][0][1][2].item<float>(), 3.0f / 255.0f);
  EXPECT_EQ(indices_of(*loader.next()), std::vector<int64_t>{4});
  EXPECT_FALSE(loader.next().has_value());
  EXPECT_FALSE(loader.next().has_value());
}

TEST(BatchLoader, OrderIsAFunctionOfSeedAndEpoch) {
  BatchLoader a(numbered_mod7(50), preprocess_preset("none"), options(8, true, 3));
  BatchLoader b(numbered_mod7(50), preprocess_preset("none"), options(8, true, 0));
  const auto a3 = epoch_indices(a, 3);
  epoch_indices(b, 0);
  epoch_indices(b, 1);
  EXPECT_EQ(epoch_indices(b, 3), a3);  // a resumed run sees the same batches
  EXPECT_NE(epoch_indices(a, 4), a3);
  auto other_seed = options(8, true);
  other_seed.seed = 18;
  BatchLoader c(numbered_mod7(50), preprocess_preset("none"), other_seed);
  EXPECT_NE(epoch_indices(c, 3), a3);
  BatchLoader sequential(numbered_mod7(50), preprocess_preset("none"), options(8, false));
  std::vector<int64_t> identity(50);
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_EQ(flat(epoch_indices(sequential, 5)), identity);
}

TEST(BatchLoader, RandomPermutationIsStable) {
  // Pinned values: a change of generator would silently change every resumed training run.
  EXPECT_EQ(random_permutation(8, 42), random_permutation(8, 42));
  EXPECT_NE(random_permutation(8, 42), random_permutation(8, 43));
  SplitMix64 rng(0);
  EXPECT_EQ(rng.next(), 0xe220a8397b1dcdafULL);  // the reference SplitMix64 sequence for seed 0
  EXPECT_EQ(rng.next(), 0x6e789e6aa1b965f4ULL);
  for (int i = 0; i < 1000; ++i) EXPECT_LT(rng.below(3), 3u);
}

TEST(BatchLoader, DropLast) {
  auto o = options(10, true);
  o.drop_last = true;
  BatchLoader loader(numbered_mod7(103), preprocess_preset("none"), o);
  EXPECT_EQ(loader.batches_per_epoch(), 10);
  EXPECT_EQ(loader.samples_per_epoch(), 100);
  const auto batches = epoch_indices(loader, 2);
  ASSERT_EQ(batches.size(), 10u);
  for (const auto& b : batches) EXPECT_EQ(b.size(), 10u);
  auto all = flat(batches);
  EXPECT_EQ(std::set<int64_t>(all.begin(), all.end()).size(), 100u);
  const auto order = loader.epoch_order(2);
  EXPECT_EQ(all, std::vector<int64_t>(order.begin(), order.begin() + 100));
}

std::vector<at::Tensor> epoch_tensors(BatchLoader& loader, int64_t epoch) {
  loader.start_epoch(epoch);
  std::vector<at::Tensor> out;
  while (auto batch = loader.next()) {
    out.push_back(batch->images);
    out.push_back(batch->labels.to(at::kFloat));
  }
  return out;
}

void expect_same(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(a[i].equal(b[i])) << "tensor " << i;
}

/// 40 RGB 6x6 images of random content.
std::shared_ptr<TensorDataset> textured() {
  at::manual_seed(3);
  return std::make_shared<TensorDataset>(
      at::randint(0, 256, {40, 3, 6, 6}, at::kLong).to(at::kByte),
      at::randint(0, 10, {40}, at::kLong), 10, "textured");
}

TEST(BatchLoader, SameBatchesRegardlessOfWorkersAndPath) {
  const auto data = textured();
  auto o = options(7, true, 0);
  o.augment = {2, true};
  BatchLoader reference(data, preprocess_preset("cifar10"), o);
  const auto expected = epoch_tensors(reference, 1);
  for (const int workers : {1, 2, 5}) {
    for (const int prefetch : {1, 3}) {
      auto ow = o;
      ow.workers = workers;
      ow.prefetch = prefetch;
      BatchLoader fast(data, preprocess_preset("cifar10"), ow);
      expect_same(epoch_tensors(fast, 1), expected);
      BatchLoader slow(std::make_shared<PerSample>(data), preprocess_preset("cifar10"), ow);
      expect_same(epoch_tensors(slow, 1), expected);
    }
  }
  BatchLoader again(data, preprocess_preset("cifar10"), o);
  const auto epoch2 = epoch_tensors(again, 2);
  ASSERT_EQ(epoch2.size(), expected.size());
  EXPECT_FALSE(epoch2[0].equal(expected[0]));
}

TEST(BatchLoader, NormalizesWithThePreprocessing) {
  const auto data = textured();
  BatchLoader loader(data, preprocess_preset("cifar10"), options(40, false));
  const auto batch = loader.next();
  ASSERT_TRUE(batch.has_value());
  EXPECT_TRUE(batch->images.equal(normalize(data->images(), preprocess_preset("cifar10"))));
}

TEST(BatchLoader, GreyToRgbOnBothPaths) {
  auto p = preprocess_preset("imagenet");
  p.resize = 0;
  p.center_crop = 0;
  p.grey_to_rgb = true;
  BatchLoader fast(numbered_mod7(9), p, options(4, false));
  BatchLoader slow(std::make_shared<PerSample>(numbered_mod7(9)), p, options(4, false));
  const auto a = epoch_tensors(fast, 0), b = epoch_tensors(slow, 0);
  expect_same(a, b);
  EXPECT_EQ(a[0].size(1), 3);
}

/// Images 3xHxW with H = 4 + index % 3: sizes differ.
class RaggedDataset : public Dataset {
 public:
  int64_t size() const override { return 6; }
  Example get(int64_t index) const override {
    return {at::full({3, 4 + index % 3, 5}, static_cast<int>(index * 10), at::kByte), index % 2};
  }
  int64_t num_classes() const override { return 2; }
  std::string description() const override { return "ragged"; }
};

TEST(BatchLoader, ImagesOfDifferentSizesNeedGeometry) {
  BatchLoader plain(std::make_shared<RaggedDataset>(), preprocess_preset("none"),
                    options(3, false));
  EXPECT_THAT([&] { plain.next(); }, ThrowsMessage<Error>(HasSubstr("resize and center_crop")));
  auto p = preprocess_preset("none");
  p.resize = 4;
  p.center_crop = 4;
  BatchLoader fixed(std::make_shared<RaggedDataset>(), p, options(3, false));
  const auto batch = fixed.next();
  ASSERT_TRUE(batch.has_value());
  EXPECT_EQ(batch->images.sizes(), (std::vector<int64_t>{3, 3, 4, 4}));
  EXPECT_EQ(batch->images[2][0][0][0].item<float>(), 20.0f / 255.0f);  // constant stays constant
}

TEST(BatchLoader, WorkerErrorsReachTheConsumerInOrder) {
  for (const int workers : {0, 1, 3}) {
    BatchLoader loader(std::make_shared<PerSample>(numbered_mod7(100), 37), preprocess_preset("none"),
                       options(10, false, workers));
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(loader.next().has_value()) << workers;
    EXPECT_THAT([&] { loader.next(); },
                ThrowsMessage<Error>(HasSubstr("broken example 37 in test.bin")));
    EXPECT_THAT([&] { loader.next(); }, ThrowsMessage<Error>(HasSubstr("broken example 37")));
    loader.start_epoch(1);  // a new epoch starts afresh
    EXPECT_TRUE(loader.next().has_value());
  }
}

TEST(BatchLoader, StoppingMidEpochDoesNotHang) {
  const auto start = std::chrono::steady_clock::now();
  {
    auto slow = std::make_shared<PerSample>(numbered_mod7(200), -1, std::chrono::milliseconds(2));
    BatchLoader loader(slow, preprocess_preset("none"), options(10, true, 4));
    ASSERT_TRUE(loader.next().has_value());
    loader.start_epoch(1);  // abandons epoch 0 with batches in flight
    ASSERT_TRUE(loader.next().has_value());
  }  // destroyed mid-epoch
  const auto seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 5.0);
}

TEST(BatchLoader, ValidatesOptions) {
  EXPECT_THROW(BatchLoader(numbered_mod7(5), preprocess_preset("none"), options(0, false)), Error);
  auto o = options(2, false);
  o.prefetch = 0;
  EXPECT_THROW(BatchLoader(numbered_mod7(5), preprocess_preset("none"), o), Error);
  Preprocess bad = preprocess_preset("none");
  bad.std = {};
  EXPECT_THROW(BatchLoader(numbered_mod7(5), bad, options(2, false)), Error);
  BatchLoader empty(numbered_mod7(0), preprocess_preset("none"), options(2, true));
  EXPECT_EQ(empty.batches_per_epoch(), 0);
  EXPECT_FALSE(empty.next().has_value());
}

/// Whether `out` is a window of the zero-padded `image`, flipped or not.
bool is_padded_window(const at::Tensor& image, const at::Tensor& out, int64_t pad, bool* flipped) {
  const auto padded = at::constant_pad_nd(image, {pad, pad, pad, pad}, 0);
  for (int64_t top = 0; top <= 2 * pad; ++top) {
    for (int64_t left = 0; left <= 2 * pad; ++left) {
      const auto window = padded.narrow(1, top, image.size(1)).narrow(2, left, image.size(2));
      if (window.equal(out)) {
        *flipped = false;
        return true;
      }
      if (window.flip({2}).equal(out)) {
        *flipped = true;
        return true;
      }
    }
  }
  return false;
}

TEST(Augment, RandomCropAndFlipAreDeterministic) {
  const auto image = (at::arange(2 * 5 * 6, at::kLong) + 1).to(at::kByte).view({2, 5, 6});
  const Augment augment{2, true};
  int flips = 0, unchanged = 0;
  std::set<std::vector<uint8_t>> distinct;
  for (int64_t position = 0; position < 200; ++position) {
    const auto out = augment_image(image, augment, 5, 1, position);
    EXPECT_TRUE(out.equal(augment_image(image, augment, 5, 1, position)));
    bool flipped = false;
    ASSERT_TRUE(is_padded_window(image, out, 2, &flipped)) << position;
    flips += flipped;
    unchanged += out.equal(image);
    distinct.insert(
        std::vector<uint8_t>(out.data_ptr<uint8_t>(), out.data_ptr<uint8_t>() + out.numel()));
  }
  EXPECT_GT(flips, 70);
  EXPECT_LT(flips, 130);
  EXPECT_LT(unchanged, 30);
  EXPECT_GT(distinct.size(), 40u);  // 25 windows x 2 flips = 50 possibilities
  EXPECT_FALSE(
      augment_image(image, augment, 5, 2, 0).equal(augment_image(image, augment, 5, 1, 0)) &&
      augment_image(image, augment, 5, 3, 0).equal(augment_image(image, augment, 5, 1, 0)) &&
      augment_image(image, augment, 6, 1, 0).equal(augment_image(image, augment, 5, 1, 0)));
  EXPECT_TRUE(augment_image(image, Augment{}, 5, 1, 0).equal(image));
}

}  // namespace
}  // namespace qimera::data
