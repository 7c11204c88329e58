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
using Records = std::map<std::string, std::string>;
using namespace std::string_literals;

Records fixture_records() {
  caffe2::serialize::PyTorchStreamReader reader(fixture("resnet20_cifar10_formula.pt").string());
  Records records;
  for (const std::string& name : reader.getAllRecords()) {
    if (name == "version" || name.rfind(".data/", 0) == 0) continue;  // the writer adds its own
    auto [data, size] = reader.getRecord(name);
    records[name] = std::string(static_cast<const char*>(data.get()), size);
  }
  return records;
}

void write_archive(const std::filesystem::path& path, const Records& records) {
  caffe2::serialize::PyTorchStreamWriter writer(path.string());
  for (const auto& [name, bytes] : records) writer.writeRecord(name, bytes.data(), bytes.size());
  writer.writeEndOfFile();
}

std::string error_reading(const std::filesystem::path& path) {
  try {
    read_torch_zip(path);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

TEST(TorchZip, RewrittenArchiveReadsLikeTheOriginal) {
  testing::TempDir dir;
  Records records = fixture_records();
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
  EXPECT_THAT(error_reading(dir / "evil.pt"),
              AllOf(HasSubstr("evil.pt"), HasSubstr("'os.system'")));
}

TEST(TorchZip, ExplainsForeignArchives) {
  testing::TempDir dir;
  write_archive(dir / "script.pt", {{"data.pkl", "\x80\x02N."}, {"constants.pkl", "\x80\x02)."}});
  EXPECT_THAT(error_reading(dir / "script.pt"), HasSubstr("TorchScript"));

  write_archive(dir / "other.pt", {{"model.pkl", "\x80\x02N."}});
  EXPECT_THAT(error_reading(dir / "other.pt"), AllOf(HasSubstr("other.pt"), HasSubstr("data.pkl")));

  Records records = fixture_records();
  records["byteorder"] = "big";
  write_archive(dir / "big.pt", records);
  EXPECT_THAT(error_reading(dir / "big.pt"), HasSubstr("byte order 'big'"));
}

TEST(TorchZip, NamesAMissingOrShortStorageRecord) {
  testing::TempDir dir;
  Records records = fixture_records();
  records.erase("data/5");
  write_archive(dir / "missing.pt", records);
  EXPECT_THAT(error_reading(dir / "missing.pt"),
              AllOf(HasSubstr("missing.pt"), HasSubstr("data/5")));

  records = fixture_records();
  records["data/0"].pop_back();
  write_archive(dir / "short.pt", records);
  EXPECT_THAT(error_reading(dir / "short.pt"),
              AllOf(HasSubstr("short.pt"), HasSubstr("data/0 has 1727 bytes")));
}

TEST(TorchZip, ZipErrorsBecomeQimeraErrors) {
  testing::TempDir dir;
  testing::write_bytes(dir / "fake.pt", "PK\x03\x04 this is not a zip file"s);
  EXPECT_THAT(error_reading(dir / "fake.pt"), HasSubstr("fake.pt"));
  EXPECT_THAT(error_reading(dir / "absent.pt"),
              AllOf(HasSubstr("absent.pt"), HasSubstr("no such file")));
}

}  // namespace
}  // namespace qimera::io
