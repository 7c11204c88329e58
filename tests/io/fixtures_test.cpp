// The resnet20 fixtures written by PyTorch itself (torch.save and safetensors): the readers must
// agree with each other, with PyTorch's key order and with the formula that filled the weights.
#include "qimera/core/error.h"
#include "qimera/io/safetensors.h"
#include "qimera/io/state_dict.h"
#include "qimera/io/torch_zip.h"
#include "support/test_support.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>

namespace qimera::io {
namespace {
using testing::fixture;
using ::testing::HasSubstr;

struct KeyLine {
  std::string key;
  at::ScalarType dtype;
  std::vector<int64_t> shape;
};

// pytorchcv-keys/NAME.txt: "key<TAB>dtype<TAB>[d0, d1, ...]" per line, '#' comments.
std::vector<KeyLine> read_keys(const std::string& name) {
  std::ifstream in(fixture("pytorchcv-keys/" + name));
  std::vector<KeyLine> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string key, dtype, shape;
    std::getline(fields, key, '\t');
    std::getline(fields, dtype, '\t');
    std::getline(fields, shape);
    KeyLine parsed{key, dtype == "int64" ? at::kLong : at::kFloat, {}};
    EXPECT_TRUE(dtype == "int64" || dtype == "float32") << line;
    std::istringstream dims(shape.substr(1, shape.size() - 2));
    for (std::string dim; std::getline(dims, dim, ',');) parsed.shape.push_back(std::stoll(dim));
    lines.push_back(parsed);
  }
  return lines;
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// tests/fixtures/README.md: entry k, element j, s = sin(1 + 0.37k + 12.9898j) in double.
at::Tensor formula(const std::string& key, int64_t k, const at::Tensor& like) {
  if (!like.is_floating_point()) return at::zeros_like(like);
  const auto j = at::arange(like.numel(), at::kDouble);
  const at::Tensor s = at::sin(1.0 + 0.37 * static_cast<double>(k) + 12.9898 * j);
  at::Tensor value;
  if (ends_with(key, "running_var")) {
    value = 1 + 0.25 * (s + 1);
  } else if (ends_with(key, "running_mean") || ends_with(key, ".bias")) {
    value = 0.1 * s;
  } else if (ends_with(key, ".weight") && like.dim() == 1) {
    value = 1 + 0.1 * s;
  } else {
    const double fan_in = static_cast<double>(like.numel() / like.size(0));
    value = std::sqrt(3.0 / fan_in) * s;
  }
  return value.to(at::kFloat).reshape(like.sizes());
}

void expect_matches_keys_file(const StateDict& state) {
  const auto keys = read_keys("resnet20_cifar10.txt");
  ASSERT_EQ(state.size(), keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ(state[i].first, keys[i].key) << i;
    EXPECT_EQ(state[i].second.scalar_type(), keys[i].dtype) << keys[i].key;
    EXPECT_EQ(state[i].second.sizes().vec(), keys[i].shape) << keys[i].key;
  }
}

TEST(Fixtures, TorchSaveFileHasPyTorchsKeysDtypesAndShapes) {
  expect_matches_keys_file(read_torch_zip(fixture("resnet20_cifar10_formula.pt")));
}

TEST(Fixtures, SafetensorsFileHasPyTorchsKeysDtypesAndShapes) {
  expect_matches_keys_file(read_safetensors(fixture("resnet20_cifar10_formula.safetensors")));
}

TEST(Fixtures, BothFormatsHoldBitIdenticalTensors) {
  const StateDict zip = read_state_dict(fixture("resnet20_cifar10_formula.pt"));
  const StateDict safetensors = read_state_dict(fixture("resnet20_cifar10_formula.safetensors"));
  testing::expect_same_state(zip, safetensors);
}

TEST(Fixtures, ValuesFollowTheFormula) {
  const StateDict state = read_torch_zip(fixture("resnet20_cifar10_formula.pt"));
  for (size_t k = 0; k < state.size(); ++k) {
    const auto& [key, tensor] = state[k];
    const at::Tensor expected = formula(key, static_cast<int64_t>(k), tensor);
    EXPECT_TRUE(at::allclose(tensor, expected, /*rtol=*/1e-6, /*atol=*/1e-7)) << key;
  }
  // Spot checks against hand-computed values, independent of the formula code above.
  EXPECT_NEAR(state[0].second.flatten()[0].item<float>(), std::sqrt(3.0 / 27) * std::sin(1.0),
              1e-7);
  EXPECT_NEAR(state[1].second[3].item<float>(), 1 + 0.1 * std::sin(1.37 + 12.9898 * 3), 1e-7);
}

TEST(Fixtures, NumBatchesTrackedAreInt64Scalars) {
  int count = 0;
  for (const auto& [key, tensor] : read_torch_zip(fixture("resnet20_cifar10_formula.pt"))) {
    if (!ends_with(key, "num_batches_tracked")) continue;
    ++count;
    EXPECT_EQ(tensor.scalar_type(), at::kLong) << key;
    EXPECT_EQ(tensor.dim(), 0) << key;
    EXPECT_EQ(tensor.item<int64_t>(), 0) << key;
  }
  EXPECT_EQ(count, 21);
}

TEST(Fixtures, FormatIsRecognisedByContentNotExtension) {
  testing::TempDir dir;
  std::filesystem::copy_file(fixture("resnet20_cifar10_formula.pt"), dir / "weights.safetensors");
  std::filesystem::copy_file(fixture("resnet20_cifar10_formula.safetensors"), dir / "weights.pth");
  const StateDict a = read_state_dict(dir / "weights.safetensors");
  const StateDict b = read_state_dict(dir / "weights.pth");
  ASSERT_EQ(a.size(), b.size());
  EXPECT_TRUE(at::equal(a.back().second, b.back().second));
}

TEST(Fixtures, UnreadableFilesAreNamed) {
  testing::TempDir dir;
  const auto missing = dir / "missing.pt";
  EXPECT_THROW(
      {
        try {
          read_state_dict(missing);
        } catch (const Error& e) {
          EXPECT_THAT(e.what(), HasSubstr("missing.pt"));
          throw;
        }
      },
      Error);
  testing::write_bytes(dir / "legacy.pt",
                       std::string("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20", 10));
  EXPECT_THAT(testing::error_of([&] { read_state_dict(dir / "legacy.pt"); }), HasSubstr("legacy"));
  testing::write_bytes(dir / "empty.bin", "");
  EXPECT_THROW(read_state_dict(dir / "empty.bin"), Error);
}

}  // namespace
}  // namespace qimera::io
