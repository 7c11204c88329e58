// Damaged checkpoints: every read of a truncated or bit-flipped fixture either succeeds or throws
// qimera::Error, never another exception type, never a crash.
#include "qimera/core/atomic_file.h"
#include "qimera/core/error.h"
#include "qimera/io/state_dict.h"
#include "qimera/io/unpickler.h"
#include "support/test_support.h"

#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <random>
#include <typeinfo>

namespace qimera::io {
namespace {
using testing::fixture;
using ::testing::HasSubstr;

const char* const kFixtures[] = {"resnet20_cifar10_formula.pt",
                                 "resnet20_cifar10_formula.safetensors"};

// Reads `bytes` as a file named `name`; returns the qimera::Error message, or "" on success.
// Any other exception is a test failure.
std::string read_damaged(const testing::TempDir& dir, const std::string& name,
                         const std::string& bytes) {
  const auto path = dir / name;
  testing::write_bytes(path, bytes);
  try {
    read_state_dict(path);
    return "";
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << name << ": " << typeid(e).name() << ": " << e.what();
    return "other exception";
  }
}

TEST(Corruption, EveryTruncationIsANamedError) {
  testing::TempDir dir;
  for (const char* name : kFixtures) {
    const std::string bytes = read_file(fixture(name));
    for (int i = 0; i < 40; ++i) {
      const size_t length = bytes.size() * static_cast<size_t>(i) / 40 + (i % 3 == 1 ? 7 : 0);
      const std::string message =
          read_damaged(dir, "cut_" + std::string(name), bytes.substr(0, length));
      EXPECT_THAT(message, HasSubstr("cut_" + std::string(name))) << "length " << length;
    }
    EXPECT_NE(read_damaged(dir, "cut_" + std::string(name), bytes.substr(0, bytes.size() - 1)), "");
  }
}

void flip_bytes(const std::string& name, size_t region, unsigned seed) {
  testing::TempDir dir;
  const std::string bytes = read_file(fixture(name));
  std::mt19937 rng(seed);
  int errors = 0;
  for (int trial = 0; trial < 100; ++trial) {
    std::string damaged = bytes;
    const size_t position = rng() % std::min(region, bytes.size());
    damaged[position] = static_cast<char>(damaged[position] ^ (1 + rng() % 255));
    errors += read_damaged(dir, "flipped_" + name, damaged).empty() ? 0 : 1;
  }
  ::testing::Test::RecordProperty("errors_" + name, errors);
}

TEST(Corruption, FlippedBytesAnywhereAreHandled) {
  for (const char* name : kFixtures) flip_bytes(name, SIZE_MAX, 1234);
}

// The headers (the zip's first record is data.pkl, safetensors starts with its JSON) are where a
// flip changes the structure rather than a weight.
TEST(Corruption, FlippedBytesInTheHeadersAreHandled) {
  for (const char* name : kFixtures) flip_bytes(name, 22000, 99);
}

// The zip's CRC catches most flips before the pickle is run; this feeds damaged pickles directly.
TEST(Corruption, DamagedFixturePickleIsRefusedCleanly) {
  caffe2::serialize::PyTorchStreamReader reader(fixture("resnet20_cifar10_formula.pt").string());
  std::map<std::string, std::string> records;
  for (const std::string& name : reader.getAllRecords()) {
    auto [bytes, length] = reader.getRecord(name);
    records[name] = std::string(static_cast<const char*>(bytes.get()), length);
  }
  const std::string pickle = records.at("data.pkl");
  const auto record = [&](const std::string& name) -> const std::string& {
    auto found = records.find(name);
    if (found == records.end()) fail("fixture: no record {}", name);
    return found->second;
  };
  const detail::RecordSource load{
      [&](const std::string& name) -> uint64_t { return record(name).size(); },
      [&](const std::string& name, void* out, uint64_t size) {
        std::memcpy(out, record(name).data(), size);
      }};
  ASSERT_EQ(detail::unpickle_state_dict(pickle, load, "fixture").size(), 128u);
  std::mt19937 rng(5);
  auto check = [&](const std::string& damaged, const std::string& what) {
    try {
      detail::unpickle_state_dict(damaged, load, "fixture");
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), HasSubstr("fixture")) << what;
    } catch (const std::exception& e) {
      ADD_FAILURE() << what << ": " << typeid(e).name() << ": " << e.what();
    }
  };
  for (int trial = 0; trial < 400; ++trial) {
    std::string damaged = pickle;
    const size_t position = rng() % damaged.size();
    damaged[position] = static_cast<char>(rng());
    check(damaged, "byte " + std::to_string(position));
  }
  for (size_t length = 0; length < pickle.size(); length += 97) {
    EXPECT_THROW(detail::unpickle_state_dict(pickle.substr(0, length), load, "fixture"), Error);
  }
}

}  // namespace
}  // namespace qimera::io
