#include "qimera/core/atomic_file.h"
#include "qimera/core/error.h"
#include "qimera/core/json_file.h"
#include "qimera/core/progress.h"
#include "qimera/core/runtime.h"
#include "qimera/core/table.h"
#include "support/test_support.h"

#include <torch/cuda.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace qimera {
namespace {
using ::testing::HasSubstr;
using testing::TempDir;

TEST(AtomicFile, WritesAndReplaces) {
  TempDir dir;
  const auto path = dir / "sub/out.txt";
  write_file_atomically(path, "first");
  write_file_atomically(path, "second");
  EXPECT_EQ(read_file(path), "second");
  // No temporary files are left behind.
  int entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(path.parent_path())) {
    ++entries;
  }
  EXPECT_EQ(entries, 1);
}

TEST(AtomicFile, FailedWriterLeavesTargetUntouched) {
  TempDir dir;
  const auto path = dir / "out.txt";
  write_file_atomically(path, "kept");
  EXPECT_THROW(write_atomically(path,
                                [](const std::filesystem::path& tmp) {
                                  write_file_atomically(tmp, "partial");
                                  throw Error("killed");
                                }),
               Error);
  EXPECT_EQ(read_file(path), "kept");
}

TEST(AtomicFile, MissingFileErrorNamesIt) {
  EXPECT_THAT(testing::error_of([&] { read_file("/nonexistent/qimera.bin"); }),
              HasSubstr("/nonexistent/qimera.bin"));
}

TEST(JsonFile, SyntaxErrorNamesFile) {
  TempDir dir;
  testing::write_bytes(dir / "bad.json", "{\"a\": ");
  const auto message = testing::error_of([&] { read_json(dir / "bad.json"); });
  EXPECT_THAT(message, HasSubstr("bad.json"));
  EXPECT_THAT(message, HasSubstr("not valid JSON"));
}

TEST(JsonFile, RoundTripAndLines) {
  TempDir dir;
  write_json(dir / "a.json", {{"x", 1.5}, {"y", "z"}});
  EXPECT_EQ(read_json(dir / "a.json")["x"].get<double>(), 1.5);
  append_json_line(dir / "m.jsonl", {{"epoch", 0}});
  append_json_line(dir / "m.jsonl", {{"epoch", 1}});
  EXPECT_EQ(read_file(dir / "m.jsonl"), "{\"epoch\":0}\n{\"epoch\":1}\n");
}

TEST(Runtime, ParsesDevices) {
  EXPECT_EQ(resolve_device("cpu").type(), c10::kCPU);
  EXPECT_THROW(resolve_device("gpu"), Error);
  if (!torch::cuda::is_available()) {
    EXPECT_EQ(resolve_device("auto").type(), c10::kCPU);
    EXPECT_THROW(resolve_device("cuda"), Error);
  }
}

TEST(Progress, FormatsDurations) {
  EXPECT_EQ(format_duration(5.2), "5s");
  EXPECT_EQ(format_duration(185), "3m05s");
  EXPECT_EQ(format_duration(3720), "1h02m");
  EXPECT_EQ(format_duration(-1), "?");
}

TEST(Table, AlignsColumns) {
  Table t({"name", "top-1"});
  t.add_row({"fp32", "93.10"});
  t.add_row({"quantized 4w4a", "9.5"});
  EXPECT_EQ(t.render(),
            "name            top-1\n"
            "---------------------\n"
            "fp32            93.10\n"
            "quantized 4w4a    9.5\n");
  EXPECT_THROW(t.add_row({"x"}), Error);
}

}  // namespace
}  // namespace qimera
