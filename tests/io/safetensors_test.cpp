// The safetensors reader and writer: round trips, a file whose bytes are written here by hand, and
// every kind of inconsistent file the reader must refuse.
#include "qimera/core/atomic_file.h"
#include "qimera/core/error.h"
#include "qimera/io/safetensors.h"
#include "support/test_support.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace qimera::io {
namespace {
using ::testing::AllOf;
using ::testing::HasSubstr;
using namespace std::string_literals;

std::string le64(uint64_t value) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(value >> (8 * i));
  return bytes;
}

std::string safetensors_bytes(const std::string& header, const std::string& data) {
  return le64(header.size()) + header + data;
}

std::string safetensors_error(const std::filesystem::path& path) {
  return testing::error_of([&] { read_safetensors(path); });
}

StateDict every_kind_of_tensor() {
  return {
      {"f64", at::linspace(-1, 1, 5, at::kDouble)},
      {"f32", at::randn({3, 4})},
      {"f16", at::randn({2, 3}).to(at::kHalf)},
      {"bf16", at::randn({7}).to(at::kBFloat16)},
      {"i64", at::tensor({-(int64_t{1} << 40), int64_t{5}})},
      {"i32", at::arange(-3, 3, at::kInt)},
      {"i16", at::arange(-300, 300, 7, at::kShort)},
      {"i8", at::arange(-128, 127, at::kChar)},
      {"u8", at::arange(0, 256, at::kByte).reshape({16, 16})},
      {"bool", at::tensor({1, 0, 1}, at::kByte).to(at::kBool)},
      {"scalar", at::scalar_tensor(2.5)},
      {"empty", at::empty({0, 3})},
      {"transposed", at::arange(12, at::kFloat).reshape({3, 4}).t()},
      {"sliced", at::arange(20, at::kLong).slice(0, 1, 20, 3)},
  };
}

TEST(Safetensors, RoundTripKeepsOrderDtypesShapesValuesAndMetadata) {
  testing::TempDir dir;
  const StateDict original = every_kind_of_tensor();
  const std::map<std::string, std::string> metadata = {{"format", "pt"}, {"note", "é \"quoted\""}};
  write_safetensors(dir / "all.safetensors", original, metadata);
  std::map<std::string, std::string> read_metadata = {{"stale", "entry"}};
  const StateDict copy = read_safetensors(dir / "all.safetensors", &read_metadata);
  testing::expect_same_state(copy, original);
  EXPECT_EQ(read_metadata, metadata);
  EXPECT_TRUE(read_safetensors(dir / "all.safetensors").size() == original.size());
}

TEST(Safetensors, HeaderIsPaddedToEightBytes) {
  testing::TempDir dir;
  for (const std::string name :
       {"a", "ab", "abc", "abcd", "abcde", "abcdef", "abcdefg", "abcdefgh"}) {
    write_safetensors(dir / "p.safetensors", {{name, at::ones({1})}});
    const std::string bytes = read_file(dir / "p.safetensors");
    uint64_t length = 0;
    for (int i = 7; i >= 0; --i) length = (length << 8) | static_cast<uint8_t>(bytes[i]);
    EXPECT_EQ(length % 8, 0u) << name;
    EXPECT_EQ(bytes.size(), 8 + length + 4) << name;
    const std::string header = bytes.substr(8, length);
    EXPECT_EQ(header.substr(0, header.find_last_not_of(' ') + 1),
              "{\"" + name + "\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}");
  }
}

// Bytes as another implementation would write them: header order is kept, metadata is optional.
TEST(Safetensors, ReadsAHandWrittenFile) {
  testing::TempDir dir;
  const std::string header =
      R"({"__metadata__":{"k":"v"},"z":{"dtype":"I16","shape":[],"data_offsets":[8,10]},)"
      R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  const std::string data = "\x00\x00\x80\x3f\x00\x00\x20\xc0\xfe\xff"s;  // 1.0f, -2.5f, int16 -2
  testing::write_bytes(dir / "hand.safetensors", safetensors_bytes(header, data));
  std::map<std::string, std::string> metadata;
  const StateDict state = read_safetensors(dir / "hand.safetensors", &metadata);
  ASSERT_EQ(state.size(), 2u);
  EXPECT_EQ(state[0].first, "z");
  EXPECT_EQ(state[0].second.dim(), 0);
  EXPECT_EQ(state[0].second.item<int16_t>(), -2);
  EXPECT_EQ(state[1].first, "a");
  EXPECT_TRUE(at::equal(state[1].second, at::tensor({1.0f, -2.5f})));
  EXPECT_EQ(metadata, (std::map<std::string, std::string>{{"k", "v"}}));
}

TEST(Safetensors, RefusesInconsistentFiles) {
  testing::TempDir dir;
  const std::string data8(8, '\0');
  auto entry = [](const std::string& name, const std::string& dtype, const std::string& shape,
                  const std::string& offsets) {
    return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape +
           ",\"data_offsets\":" + offsets + "}";
  };
  const std::vector<std::tuple<std::string, std::string, std::string>> cases = {
      {"short", "abc", "too short"},
      {"long_header", le64(1000) + "{}", "exceeds the file size"},
      {"huge_header", le64(~uint64_t{0}) + "{}", "exceeds the file size"},
      {"not_json", safetensors_bytes("{nope", ""), "not valid JSON"},
      {"not_object", safetensors_bytes("[1,2]", ""), "not a JSON object"},
      {"out_of_range", safetensors_bytes("{" + entry("a", "F32", "[2]", "[8,16]") + "}", data8),
       "starts at byte 8"},
      {"past_end", safetensors_bytes("{" + entry("a", "F32", "[4]", "[0,16]") + "}", data8),
       "cover 16 bytes"},
      {"overlap",
       safetensors_bytes(
           "{" + entry("a", "F32", "[2]", "[0,8]") + "," + entry("b", "F32", "[1]", "[4,8]") + "}",
           data8),
       "overlaps"},
      {"gap",
       safetensors_bytes(
           "{" + entry("a", "F32", "[1]", "[0,4]") + "," + entry("b", "I16", "[1]", "[6,8]") + "}",
           data8),
       "a gap"},
      {"trailing", safetensors_bytes("{" + entry("a", "F32", "[1]", "[0,4]") + "}", data8),
       "data section has 8"},
      {"size_mismatch", safetensors_bytes("{" + entry("a", "F32", "[3]", "[0,8]") + "}", data8),
       "takes 12"},
      {"reversed", safetensors_bytes("{" + entry("a", "U8", "[0]", "[8,0]") + "}", data8),
       "data_offsets [8, 0]"},
      {"unknown_dtype", safetensors_bytes("{" + entry("a", "F8_E4M3", "[8]", "[0,8]") + "}", data8),
       "'F8_E4M3'"},
      {"negative_dim", safetensors_bytes("{" + entry("a", "U8", "[-8]", "[0,8]") + "}", data8),
       "non-negative"},
      {"float_dim", safetensors_bytes("{" + entry("a", "U8", "[8.0]", "[0,8]") + "}", data8),
       "non-negative"},
      {"overflow",
       safetensors_bytes("{" + entry("a", "F64", "[4294967296,4294967296]", "[0,8]") + "}", data8),
       "too large"},
      {"bad_offsets", safetensors_bytes("{" + entry("a", "U8", "[8]", "[0]") + "}", data8),
       "not [begin, end]"},
      {"no_dtype", safetensors_bytes(R"({"a":{"shape":[8],"data_offsets":[0,8]}})", data8),
       "no 'dtype'"},
      {"duplicate",
       safetensors_bytes(
           "{" + entry("a", "U8", "[8]", "[0,8]") + "," + entry("a", "U8", "[8]", "[0,8]") + "}",
           data8),
       "'a' twice"},
      {"bad_bool",
       safetensors_bytes("{" + entry("a", "BOOL", "[8]", "[0,8]") + "}", "\x01\x02\0\0\0\0\0\0"s),
       "0 and 1"},
      {"deep",
       safetensors_bytes(
           "{\"a\":" + std::string(1'000'000, '[') + std::string(1'000'000, ']') + "}", ""),
       "nested more than 64 levels"},
      {"shallow",  // within the nesting limit: the value is named with a bounded excerpt
       safetensors_bytes("{\"a\":" + std::string(50, '[') + std::string(50, ']') + "}", ""),
       "is described by [[[[[[[[[["},
      {"deep_shape",
       safetensors_bytes(
           "{" + entry("a", "U8", std::string(100'000, '[') + std::string(100'000, ']'), "[0,0]") +
               "}",
           ""),
       "nested more than 64 levels"},
      {"shallow_shape",
       safetensors_bytes("{" + entry("a", "U8", "[" + std::string(40, '[') + std::string(40, ']') + "]", "[0,0]") + "}", ""),
       "shape entry is [[[[[[[[[["},
      {"bad_metadata", safetensors_bytes(R"({"__metadata__":{"k":1}})", ""), "not a string"},
  };
  for (const auto& [name, bytes, message] : cases) {
    testing::write_bytes(dir / (name + ".safetensors"), bytes);
    EXPECT_THAT(safetensors_error(dir / (name + ".safetensors")),
                AllOf(HasSubstr(name + ".safetensors"), HasSubstr(message)))
        << name;
  }
}

TEST(Safetensors, WriterRefusesWhatTheFormatCannotHold) {
  testing::TempDir dir;
  const auto path = dir / "out.safetensors";
  write_safetensors(path, {{"kept", at::ones({2})}});
  EXPECT_THROW(write_safetensors(path, {{"a", at::ones({1})}, {"a", at::ones({1})}}), Error);
  EXPECT_THROW(write_safetensors(path, {{"__metadata__", at::ones({1})}}), Error);
  EXPECT_THROW(write_safetensors(path, {{"c", at::ones({1}, at::kComplexFloat)}}), Error);
  EXPECT_THROW(write_safetensors(path, {{"u", at::Tensor()}}), Error);
  EXPECT_THROW(write_safetensors(path, {{"bad\xff utf8", at::ones({1})}}), Error);
  const StateDict state = read_safetensors(path);  // the earlier file is untouched
  ASSERT_EQ(state.size(), 1u);
  EXPECT_EQ(state[0].first, "kept");
}

}  // namespace
}  // namespace qimera::io
