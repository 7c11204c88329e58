// Hostile and broken weight files: archives whose records claim gigabytes, that overlap or inflate
// past their declared size, headers nested to overflow recursion, files that are not files, and
// numbers that load but are garbage (NaN / Inf, float bytes labelled int32).
#include "qimera/core/atomic_file.h"
#include "qimera/io/safetensors.h"
#include "qimera/io/state_dict.h"
#include "qimera/io/zip_archive.h"
#include "support/test_support.h"

#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/nn/modules/linear.h>

#include <sys/resource.h>
#include <sys/stat.h>
#include <zlib.h>

#include <chrono>
#include <map>

namespace qimera::io {
namespace {
namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;
using namespace std::string_literals;

std::string le(uint64_t value, int bytes) {
  std::string out;
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>(value >> (8 * i)));
  return out;
}

std::string raw_deflate(const std::string& bytes) {
  z_stream stream{};
  deflateInit2(&stream, 9, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&stream, bytes.size()), '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  stream.avail_in = static_cast<uInt>(bytes.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  deflate(&stream, Z_FINISH);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

// A zip writer for crafted archives: what each entry declares can differ from what it holds.
struct Entry {
  std::string name;
  std::string data;      // the bytes stored in the file (compressed when method is 8)
  uint16_t method = 0;
  uint64_t size = 0;     // declared uncompressed size
  uint32_t crc = 0;
  int64_t header_at = -1;  // where the directory says the local header is (-1: where it is)
  bool directory_only = false;  // no local header and data of its own: header_at points into others
};

Entry stored(const std::string& name, const std::string& bytes) {
  return {name, bytes, 0, bytes.size(), static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size())))};
}

Entry deflated(const std::string& name, const std::string& bytes) {
  Entry entry = stored(name, bytes);
  entry.data = raw_deflate(bytes);
  entry.method = 8;
  return entry;
}

std::string zip(const std::vector<Entry>& entries) {
  std::string file, directory;
  for (const Entry& e : entries) {
    const uint64_t offset = file.size();
    const std::string fields = le(20, 2) + le(0, 2) + le(e.method, 2) + le(0, 4) + le(e.crc, 4) +
                               le(e.data.size(), 4) + le(e.size, 4) + le(e.name.size(), 2) +
                               le(0, 2);
    if (!e.directory_only) file += "PK\x03\x04" + fields + e.name + e.data;
    directory += "PK\x01\x02" + le(20, 2) + fields + le(0, 2) + le(0, 2) + le(0, 2) + le(0, 4) +
                 le(e.header_at >= 0 ? static_cast<uint64_t>(e.header_at) : offset, 4) + e.name;
  }
  const uint64_t at = file.size();
  return file + directory + "PK\x05\x06" + le(0, 4) + le(entries.size(), 2) +
         le(entries.size(), 2) + le(directory.size(), 4) + le(at, 4) + le(0, 2);
}

// A torch.save pickle of {"w": FloatStorage of `numel` elements, viewed as [numel]}.
std::string one_tensor_pickle(int32_t numel) {
  return "\x80\x02"
         "ccollections\nOrderedDict\n)R("  // OrderedDict() and MARK
         "X\x01\0\0\0w"
         "ctorch._utils\n_rebuild_tensor_v2\n("
         "(X\x07\0\0\0storagectorch\nFloatStorage\nX\x01\0\0\0" "0X\x03\0\0\0cpuJ"s +
         le(static_cast<uint32_t>(numel), 4) + "tQ" + "J" + le(0, 4) + "(J" +
         le(static_cast<uint32_t>(numel), 4) + "t(J" + le(1, 4) + "t\x89" +
         "ccollections\nOrderedDict\n)RtRu."s;
}

std::string floats(int n) {
  std::string bytes;
  for (int i = 0; i < n; ++i) {
    const float v = static_cast<float>(i) * 0.5f;
    bytes.append(reinterpret_cast<const char*>(&v), 4);
  }
  return bytes;
}

std::string state_dict_error(const fs::path& path) {
  return testing::error_of([&] { read_state_dict(path); });
}

using qimera::testing::peak_rss_kb;

TEST(ZipRobustness, TheCraftedArchiveReadsWhenHonest) {
  testing::TempDir dir;
  testing::write_bytes(dir / "ok.pt", zip({stored("archive/data.pkl", one_tensor_pickle(6)),
                                           stored("archive/data/0", floats(6))}));
  const auto state = read_state_dict(dir / "ok.pt");
  ASSERT_EQ(state.size(), 1u);
  EXPECT_TRUE(at::equal(state[0].second, at::arange(6, at::kFloat) * 0.5));
  // Deflated records (never written by torch.save, read by PyTorch) inflate to the same.
  testing::write_bytes(dir / "deflated.pt", zip({deflated("archive/data.pkl", one_tensor_pickle(6)),
                                                 deflated("archive/data/0", floats(6))}));
  EXPECT_TRUE(at::equal(read_state_dict(dir / "deflated.pt")[0].second, state[0].second));
}

// The 5.8 MB file whose record inflates to 1 GB: the declared size disagrees with the
// storage the pickle describes, which is seen before a byte is allocated or inflated.
TEST(ZipRobustness, ARecordDeclaringMoreThanItsStorageIsRefusedBeforeInflating) {
  testing::TempDir dir;
  Entry bomb = stored("archive/data/0", std::string(1100000, '\x5a'));  // never inflated
  bomb.method = 8;
  bomb.size = uint64_t{1} << 30;
  testing::write_bytes(dir / "bomb.pt", zip({stored("archive/data.pkl", one_tensor_pickle(6)), bomb}));
  const long before = peak_rss_kb();
  EXPECT_THAT(state_dict_error(dir / "bomb.pt"),
              AllOf(HasSubstr("bomb.pt"), HasSubstr("record data/0 has 1073741824 bytes"),
                    HasSubstr("6 x Float")));
  EXPECT_LT(peak_rss_kb() - before, 200 * 1024);
}

TEST(ZipRobustness, AHugePickleIsRefusedBeforeInflating) {
  testing::TempDir dir;
  // The file declared 8 GB (zip64); 3 GB is as far as this writer's 32-bit fields go.
  Entry pickle = stored("archive/data.pkl", std::string(4 << 20, '\0'));
  pickle.method = 8;  // "compressed": 4 MB that would inflate to 3 GB
  pickle.size = uint64_t{3} << 30;
  testing::write_bytes(dir / "pkl.pt", zip({pickle}));
  EXPECT_THAT(state_dict_error(dir / "pkl.pt"),
              AllOf(HasSubstr("pkl.pt"), HasSubstr("data.pkl declares 3221225472 bytes")));
}

TEST(ZipRobustness, ImpossibleRatiosOverlapsAndLiesAreRefused) {
  testing::TempDir dir;
  Entry ratio = deflated("archive/data/0", floats(6));
  ratio.size = 0xf0000000u;
  testing::write_bytes(dir / "ratio.pt", zip({stored("archive/data.pkl", one_tensor_pickle(6)), ratio}));
  EXPECT_THAT(state_dict_error(dir / "ratio.pt"), HasSubstr("more than deflate can produce"));

  // A record whose bytes hold another record's header and data: the overlapping zip bomb, where
  // every entry inflates the same compressed bytes again.
  const Entry inner = stored("archive/data/0", floats(6));
  const std::string inner_local = "PK\x03\x04"s + le(20, 2) + le(0, 2) + le(0, 2) + le(0, 4) +
                                  le(inner.crc, 4) + le(24, 4) + le(24, 4) + le(14, 2) + le(0, 2) +
                                  inner.name + inner.data;
  Entry outer = stored("archive/data.pkl", inner_local);
  Entry nested = inner;
  nested.directory_only = true;
  nested.header_at = 30 + static_cast<int64_t>(outer.name.size());
  testing::write_bytes(dir / "overlap.pt", zip({outer, nested}));
  EXPECT_THAT(state_dict_error(dir / "overlap.pt"), AllOf(HasSubstr("overlap.pt"), HasSubstr("overlap")));
  testing::write_bytes(dir / "twice.pt", zip({stored("archive/data.pkl", one_tensor_pickle(6)),
                                              stored("archive/data/0", floats(6)),
                                              stored("archive/data/0", floats(6))}));
  EXPECT_THAT(state_dict_error(dir / "twice.pt"), HasSubstr("twice"));

  Entry longer = deflated("archive/data/0", floats(12));
  longer.size = 24;  // inflates to 48 bytes
  testing::write_bytes(dir / "longer.pt", zip({stored("archive/data.pkl", one_tensor_pickle(6)), longer}));
  EXPECT_THAT(state_dict_error(dir / "longer.pt"), HasSubstr("does not end after its declared 24 bytes"));

  Entry damaged = stored("archive/data/0", floats(6));
  damaged.data[5] ^= 1;
  testing::write_bytes(dir / "crc.pt", zip({stored("archive/data.pkl", one_tensor_pickle(6)), damaged}));
  EXPECT_THAT(state_dict_error(dir / "crc.pt"), AllOf(HasSubstr("crc.pt"), HasSubstr("CRC-32")));

  Entry past_end = stored("archive/data/0", floats(6));
  past_end.header_at = 1 << 30;
  testing::write_bytes(dir / "far.pt", zip({stored("archive/data.pkl", one_tensor_pickle(6)), past_end}));
  EXPECT_THAT(state_dict_error(dir / "far.pt"), HasSubstr("past the end"));
}

TEST(ZipRobustness, TheLibTorchWriterOutputStillReads) {
  // An archive from PyTorch's own writer (zip64 records and alignment padding included).
  testing::TempDir dir;
  {
    caffe2::serialize::PyTorchStreamWriter writer((dir / "w.pt").string());
    const std::string pickle = one_tensor_pickle(6), data = floats(6);
    writer.writeRecord("data.pkl", pickle.data(), pickle.size());
    writer.writeRecord("data/0", data.data(), data.size());
    writer.writeEndOfFile();
  }
  EXPECT_EQ(read_state_dict(dir / "w.pt")[0].second.numel(), 6);
}

TEST(WeightFiles, FifosAndDevicesAreRefusedAtOnce) {
  testing::TempDir dir;
  ASSERT_EQ(::mkfifo((dir / "w.fifo").c_str(), 0600), 0);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THAT(state_dict_error(dir / "w.fifo"), HasSubstr("FIFO"));
  EXPECT_THAT(state_dict_error("/dev/zero"), HasSubstr("character device"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(WeightFiles, ADeeplyNestedSafetensorsHeaderIsAnError) {
  testing::TempDir dir;
  const std::string header = "{\"w\": " + std::string(200000, '[') + std::string(200000, ']') + "}";
  testing::write_bytes(dir / "deep.safetensors", le(header.size(), 8) + header);
  EXPECT_THAT(state_dict_error(dir / "deep.safetensors"),
              AllOf(HasSubstr("deep.safetensors"), HasSubstr("nested")));
}

TEST(WeightFiles, NonFiniteValuesAreRefusedNamingTheTensorOrWarnedAbout) {
  StateDict state{{"fc.weight", at::ones({2, 3})}, {"fc.bias", at::zeros({2})}};
  EXPECT_NO_THROW(check_finite(state, "w.safetensors", NonFinite::Refuse));
  state[0].second[1][2] = std::numeric_limits<float>::quiet_NaN();
  state[0].second[0][1] = std::numeric_limits<float>::infinity();
  state[1].second[0] = -std::numeric_limits<float>::infinity();
  EXPECT_THAT(testing::error_of([&] { check_finite(state, "w.safetensors", NonFinite::Refuse); }),
              AllOf(HasSubstr("w.safetensors"), HasSubstr("'fc.weight'"),
                    HasSubstr("1 NaN and 1 infinite values"), HasSubstr("first at element 1 of 6"),
                    HasSubstr("1 more tensors"), HasSubstr("--allow-nonfinite")));
  EXPECT_NO_THROW(check_finite(state, "w.safetensors", NonFinite::Warn));
  // Integer tensors cannot hold NaN and are not looked at.
  EXPECT_NO_THROW(check_finite({{"steps", at::ones({3}, at::kLong)}}, "x", NonFinite::Refuse));
}

TEST(WeightFiles, FloatBytesLabelledInt32AreNotConvertedIntoGarbage) {
  torch::nn::Linear fc(3, 2);
  const auto before = fc->weight.detach().clone();
  // The same bytes, declared int32: copy_ would have turned them into integers near 1e9.
  const at::Tensor as_int = fc->weight.detach().clone().view(at::kInt);
  EXPECT_THAT(testing::error_of([&] {
                load_state_dict(*fc, {{"weight", as_int}, {"bias", fc->bias.detach().clone()}});
              }),
              AllOf(HasSubstr("wrong dtype for weight"), HasSubstr("Int in the state dict"),
                    HasSubstr("Float in the model")));
  EXPECT_TRUE(at::equal(fc->weight, before));
  // Another float width is still a conversion, as PyTorch does it.
  EXPECT_NO_THROW(load_state_dict(*fc, {{"weight", before.to(at::kDouble)}, {"bias", fc->bias.detach().clone()}}));
}

}  // namespace
}  // namespace qimera::io
