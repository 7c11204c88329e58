// Hostile and broken inputs at the lowest layer: files that are not files, JSON nested to overflow
// any recursion, writes that fail half-way (a full disk), links planted where results go.
#include "qimera/core/atomic_file.h"
#include "qimera/core/checksum.h"
#include "qimera/core/error.h"
#include "qimera/core/input_file.h"
#include "qimera/core/json_file.h"
#include "qimera/core/json_value.h"
#include "support/test_support.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <limits>

namespace qimera {
namespace {
namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::TempDir;

std::vector<std::string> folder_entries(const fs::path& folder) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(folder)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

using qimera::testing::error_of;

// ---- Files that are not regular files ----------------------------------------------------------

TEST(InputFile, RefusesFifosDevicesAndFoldersWithoutWaiting) {
  TempDir dir;
  const auto fifo = dir / "weights.fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const auto start = std::chrono::steady_clock::now();
  // Opening a FIFO for reading would block until a writer comes: forever.
  EXPECT_THAT(error_of([&] { read_file(fifo); }),
              AllOf(HasSubstr("weights.fifo"), HasSubstr("FIFO"), HasSubstr("not a regular file")));
  // /dev/zero would be read without end.
  EXPECT_THAT(error_of([&] { read_file("/dev/zero"); }),
              AllOf(HasSubstr("/dev/zero"), HasSubstr("character device")));
  EXPECT_THAT(error_of([&] { read_file(dir.path()); }), HasSubstr("a folder"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_THAT(error_of([&] { read_file(dir / "absent"); }),
              AllOf(HasSubstr("absent"), HasSubstr("no such file")));
}

TEST(InputFile, ReadsRangesAndNamesTruncation) {
  TempDir dir;
  testing::write_bytes(dir / "f", "0123456789");
  const InputFile file(dir / "f");
  EXPECT_EQ(file.size(), 10u);
  EXPECT_EQ(file.read(3, 4), "3456");
  EXPECT_THAT(error_of([&] { file.read(8, 4); }), AllOf(HasSubstr("truncated"), HasSubstr("/f")));
  EXPECT_THAT(error_of([&] { file.read(~uint64_t{0} - 1, 4); }), HasSubstr("truncated"));
  EXPECT_THAT(error_of([&] { read_file(dir / "f", 9); }), HasSubstr("more than the 9"));
}

// ---- JSON --------------------------------------------------------------------------------------

TEST(Json, DeeplyNestedFilesAreRefusedNotFollowedIntoAStackOverflow) {
  TempDir dir;
  // A 200 KB model card whose preprocess nests arrays 100000 deep: dump(), copies and comparisons
  // of such a value recurse once per level.
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  testing::write_bytes(dir / "card.json", R"({"format": "qimera-model/1", "preprocess": )" + deep + "}");
  EXPECT_THAT(error_of([&] { read_json(dir / "card.json"); }),
              AllOf(HasSubstr("card.json"), HasSubstr("nested more than 64 levels")));
  // Brackets inside strings are text, not nesting.
  testing::write_bytes(dir / "text.json", "{\"a\": \"" + std::string(1000, '[') + "\\\"]\"}");
  EXPECT_EQ(read_json(dir / "text.json")["a"].get<std::string>().size(), 1002u);
}

TEST(Json, ExcerptIsBoundedWhateverTheValue) {
  // Built by nlohmann's own (iterative) parser, bypassing the depth check.
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  const nlohmann::json value = nlohmann::json::parse(deep);
  const std::string excerpt = json_excerpt(value, 20);
  EXPECT_EQ(excerpt, std::string(20, '[') + "...");
  EXPECT_EQ(json_excerpt(nlohmann::json::parse(R"({"a": [1, 2.5, "x"], "b": null})")),
            R"({"a": [1, 2.5, "x"], "b": null})");
  EXPECT_EQ(json_excerpt(nlohmann::json(std::string(1000, 'y')), 10).size(), 13u);
  EXPECT_EQ(json_excerpt(nlohmann::json::array()), "[]");
  EXPECT_EQ(json_excerpt(nlohmann::json(5)), "5");
}

TEST(Json, TypedReadingNamesTheFieldAndNeverWrapsAround) {
  using nlohmann::json;
  EXPECT_EQ(json_integer(json::parse("32"), "x", 0, 100), 32);
  EXPECT_EQ(json_integer(json::parse("32.0"), "x", 0, 100), 32);
  // 2^63 does not fit in int64: it used to come out as -9223372036854775808.
  EXPECT_THAT(error_of([] { json_integer(json::parse("9223372036854775808"), "num_classes", 0, INT64_MAX); }),
              AllOf(HasSubstr("num_classes is 9223372036854775808"), HasSubstr("an integer in 0..")));
  EXPECT_THAT(error_of([] { json_integer(json::parse("-5"), "size", 0, 10); }),
              HasSubstr("size is -5 (a number), expected an integer in 0..10"));
  EXPECT_THAT(error_of([] { json_integer(json::parse("0.5"), "k", 0, 10); }), HasSubstr("k is 0.5"));
  // 2^63 as a float is outside int64 too (converting it would be undefined behaviour).
  EXPECT_THAT(error_of([] { json_integer(json::parse("9223372036854775808.0"), "k", 0, INT64_MAX); }),
              HasSubstr("k is"));
  EXPECT_THAT(error_of([] { json_integer(json::parse("-1e300"), "k", INT64_MIN, INT64_MAX); }),
              HasSubstr("k is"));
  EXPECT_THAT(error_of([] { json_integer(json::parse("\"7\""), "k", 0, 10); }),
              HasSubstr("k is \"7\" (a string)"));
  EXPECT_THAT(error_of([] { json_number(json(std::numeric_limits<double>::infinity()), "lr"); }),
              HasSubstr("lr is"));
  // nlohmann throws out_of_range, not parse_error, for a number beyond double.
  EXPECT_THAT(error_of([] { parse_json("{\"lr\": 1e999}", "run.json"); }),
              AllOf(HasSubstr("run.json"), HasSubstr("not valid JSON")));
  EXPECT_THAT(error_of([] { json_string(json::parse("5"), "\"format\""); }),
              HasSubstr("\"format\" is 5 (a number), expected a string"));
  EXPECT_THAT(error_of([] { json_field(json::parse("{}"), "model", "card.json"); }),
              HasSubstr("card.json has no \"model\""));
}

// ---- Failing writes ----------------------------------------------------------------------------

// A full disk, simulated with a file size limit (works as root and in containers, unlike a tmpfs):
// writes past it fail with EFBIG once SIGXFSZ, which would kill the process, is ignored.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    previous_handler_ = std::signal(SIGXFSZ, SIG_IGN);
    ::getrlimit(RLIMIT_FSIZE, &previous_);
    rlimit limit = previous_;
    limit.rlim_cur = bytes;
    ::setrlimit(RLIMIT_FSIZE, &limit);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &previous_);
    std::signal(SIGXFSZ, previous_handler_);
  }

 private:
  rlimit previous_{};
  void (*previous_handler_)(int);
};

TEST(AtomicFile, AFullDiskIsAClearErrorAndKeepsTheLastGoodFile) {
  TempDir dir;
  const auto target = dir / "checkpoint.pt";
  write_file_atomically(target, "the last good checkpoint");
  std::string message;
  {
    FileSizeLimit limit(64 << 10);
    message = error_of([&] { write_file_atomically(target, std::string(1 << 20, 'x')); });
  }
  EXPECT_THAT(message, AllOf(HasSubstr("cannot write"), HasSubstr("checkpoint.pt"),
                             HasSubstr("File too large"), Not(HasSubstr(".tmp"))));
  EXPECT_EQ(read_file(target), "the last good checkpoint");
  EXPECT_EQ(folder_entries(dir.path()), std::vector<std::string>{"checkpoint.pt"});
}

TEST(AtomicFile, APathWriterThatFailsOrThrowsAnythingLeavesNoTemporaryFile) {
  TempDir dir;
  const auto target = dir / "model.bin";
  write_file_atomically(target, "kept");
  // A third-party writer throwing its own exception type (LibTorch throws c10::Error).
  EXPECT_THAT(error_of([&] {
                write_atomically(target, [](const fs::path& tmp) {
                  testing::write_bytes(tmp, "partial");
                  throw std::runtime_error("disk on fire");
                });
              }),
              AllOf(HasSubstr("model.bin"), HasSubstr("disk on fire")));
  EXPECT_THAT(error_of([&] { write_atomically(target, [](const fs::path&) {}); }),
              HasSubstr("produced no file"));
  EXPECT_EQ(read_file(target), "kept");
  EXPECT_EQ(folder_entries(dir.path()), std::vector<std::string>{"model.bin"});
}

TEST(AtomicFile, UnwritableFoldersAndFolderTargetsAreClearErrors) {
  TempDir dir;
  testing::write_bytes(dir / "file", "x");
  EXPECT_THAT(error_of([&] { write_file_atomically(dir / "file/out.json", "{}"); }),
              AllOf(HasSubstr("file/out.json"), HasSubstr("cannot create folder")));
  // --json pointing to a folder used to end in "...: Success".
  EXPECT_THAT(error_of([&] { write_json(dir.path(), nlohmann::json::object()); }),
              AllOf(HasSubstr("it is a folder"), Not(HasSubstr("Success"))));
  EXPECT_THAT(error_of([&] { write_json(dir.path() / "", nlohmann::json::object()); }),
              HasSubstr("folder"));
  if (::geteuid() == 0) return;  // root writes into read-only folders
  fs::create_directories(dir / "ro");
  fs::permissions(dir / "ro", fs::perms::owner_read | fs::perms::owner_exec);
  EXPECT_THAT(error_of([&] { write_file_atomically(dir / "ro/out", "x"); }),
              AllOf(HasSubstr("ro/out"), HasSubstr("Permission denied")));
  fs::permissions(dir / "ro", fs::perms::owner_all);
}

TEST(OutputFile, DestructorNeverThrowsAndTheTargetNameIsUsed) {
  TempDir dir;
  {
    OutputFile out(dir / "tmp", "result.json");
    out.write("abc");
  }  // not finished: closed quietly
  EXPECT_EQ(read_file(dir / "tmp"), "abc");
  EXPECT_THAT(error_of([&] { OutputFile again(dir / "tmp", "result.json"); }),
              AllOf(HasSubstr("result.json"), HasSubstr("exists")));
}

// ---- Links planted in a run folder -------------------------------------------------------------

TEST(JsonFile, AppendingRefusesASymbolicLinkAndLeavesItsTargetAlone) {
  TempDir dir;
  testing::write_bytes(dir / "victim", "precious\n");
  fs::create_symlink(dir / "victim", dir / "metrics.jsonl");
  EXPECT_THAT(error_of([&] { append_json_line(dir / "metrics.jsonl", {{"epoch", 1}}); }),
              AllOf(HasSubstr("metrics.jsonl"), HasSubstr("symbolic link")));
  EXPECT_EQ(read_file(dir / "victim"), "precious\n");
  ASSERT_EQ(::mkfifo((dir / "fifo.jsonl").c_str(), 0600), 0);
  EXPECT_THAT(error_of([&] { append_json_line(dir / "fifo.jsonl", {{"epoch", 1}}); }),
              HasSubstr("fifo.jsonl"));
}

TEST(JsonFile, AtomicWritesReplaceALinkInsteadOfWritingThroughIt) {
  TempDir dir;
  testing::write_bytes(dir / "victim", "precious");
  fs::create_symlink(dir / "victim", dir / "summary.json");
  write_json(dir / "summary.json", {{"top1", 90}});
  EXPECT_EQ(read_file(dir / "victim"), "precious");
  EXPECT_FALSE(fs::is_symlink(dir / "summary.json"));
  EXPECT_EQ(read_json(dir / "summary.json")["top1"], 90);
}

TEST(JsonFile, AppendOnAFullDiskLeavesWholeLines) {
  TempDir dir;
  const auto path = dir / "metrics.jsonl";
  append_json_line(path, {{"epoch", 1}});
  const auto before = read_file(path);
  std::string message;
  {
    FileSizeLimit limit(before.size() + 10);
    message = error_of([&] { append_json_line(path, {{"epoch", 2}, {"note", std::string(100, 'x')}}); });
  }
  EXPECT_THAT(message, HasSubstr("metrics.jsonl"));
  EXPECT_EQ(read_file(path), before);
}

// ---- Checksums ---------------------------------------------------------------------------------

TEST(Checksum, IsXxh3With128BitsAndSeesEveryByte) {
  // The reference value of XXH3-128 for the empty input (xxHash's own test vectors).
  EXPECT_EQ(checksum_hex(""), "99aa06d3014798d86001c324468d497f");
  const std::string data(1 << 16, 'q');
  std::string flipped = data;
  flipped[12345] ^= 1;
  EXPECT_NE(checksum_hex(data), checksum_hex(flipped));
  Checksum pieces;
  pieces.update(data.substr(0, 100)).update(data.substr(100));
  EXPECT_EQ(pieces.hex(), checksum_hex(data));
}

}  // namespace
}  // namespace qimera
