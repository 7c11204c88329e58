// The torch.save zip container: archives are rebuilt from the fixture's records with one thing
// changed, using LibTorch's own zip writer.
#include "qimera/core/error.h"
#include "qimera/io/state_dict.h"
#include "qimera/io/torch_zip.h"
#include "support/test_support.h"

#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

namespace qimera::io {
namespace {
using ::testing::AllOf;
using testing::fixture;
using ::testing::HasSubstr;
using RecordBytes = std::map<std::string, std::string>;
using namespace std::string_literals;

RecordBytes fixture_records() {
  caffe2::serialize::PyTorchStreamReader reader(fixture("resnet20_cifar10_formula.pt").string());
  RecordBytes records;
  for (const std::string& name : reader.getAllRecords()) {
    if (name == "version" || name.rfind(".data/", 0) == 0) continue;  // the writer adds its own
    auto [data, size] = reader.getRecord(name);
    records[name] = std::string(static_cast<const char*>(data.get()), size);
  }
  return records;
}

void write_archive(const std::filesystem::path& path, const RecordBytes& records) {
  caffe2::serialize::PyTorchStreamWriter writer(path.string());
  for (const auto& [name, bytes] : records) writer.writeRecord(name, bytes.data(), bytes.size());
  writer.writeEndOfFile();
}

std::string torch_zip_error(const std::filesystem::path& path) {
  return testing::error_of([&] { read_torch_zip(path); });
}

TEST(TorchZip, RewrittenArchiveReadsLikeTheOriginal) {
  testing::TempDir dir;
  RecordBytes records = fixture_records();
  records["byteorder"] = "little";
  write_archive(dir / "copy.pt", records);
  const StateDict copy = read_state_dict(dir / "copy.pt");
  const StateDict original = read_torch_zip(fixture("resnet20_cifar10_formula.pt"));
  testing::expect_same_state(copy, original);
}

// Python's pickle would run os.system("ls") here.
TEST(TorchZip, RefusesCodeInTheArchive) {
  testing::TempDir dir;
  write_archive(dir / "evil.pt", {{"data.pkl",
                                   "\x80\x02"
                                   "cos\nsystem\nX\x02\0\0\0ls\x85R."s}});
  EXPECT_THAT(torch_zip_error(dir / "evil.pt"),
              AllOf(HasSubstr("evil.pt"), HasSubstr("'os.system'")));
}

TEST(TorchZip, ExplainsForeignArchives) {
  testing::TempDir dir;
  write_archive(dir / "script.pt", {{"data.pkl", "\x80\x02N."}, {"constants.pkl", "\x80\x02)."}});
  EXPECT_THAT(torch_zip_error(dir / "script.pt"), HasSubstr("TorchScript"));

  write_archive(dir / "other.pt", {{"model.pkl", "\x80\x02N."}});
  EXPECT_THAT(torch_zip_error(dir / "other.pt"), AllOf(HasSubstr("other.pt"), HasSubstr("data.pkl")));

  RecordBytes records = fixture_records();
  records["byteorder"] = "big";
  write_archive(dir / "big.pt", records);
  EXPECT_THAT(torch_zip_error(dir / "big.pt"), HasSubstr("byte order 'big'"));
}

TEST(TorchZip, NamesAMissingOrShortStorageRecord) {
  testing::TempDir dir;
  RecordBytes records = fixture_records();
  records.erase("data/5");
  write_archive(dir / "missing.pt", records);
  EXPECT_THAT(torch_zip_error(dir / "missing.pt"),
              AllOf(HasSubstr("missing.pt"), HasSubstr("data/5")));

  records = fixture_records();
  records["data/0"].pop_back();
  write_archive(dir / "short.pt", records);
  EXPECT_THAT(torch_zip_error(dir / "short.pt"),
              AllOf(HasSubstr("short.pt"), HasSubstr("data/0 has 1727 bytes")));
}

TEST(TorchZip, ZipErrorsBecomeQimeraErrors) {
  testing::TempDir dir;
  testing::write_bytes(dir / "fake.pt", "PK\x03\x04 this is not a zip file"s);
  EXPECT_THAT(torch_zip_error(dir / "fake.pt"), HasSubstr("fake.pt"));
  EXPECT_THAT(torch_zip_error(dir / "absent.pt"),
              AllOf(HasSubstr("absent.pt"), HasSubstr("no such file")));
}

}  // namespace
}  // namespace qimera::io
