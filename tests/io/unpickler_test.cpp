// The pickle interpreter on hand-built opcode streams: what torch.save writes, checkpoint dicts,
// and the hostile or broken inputs it must refuse with a qimera::Error.
#include "qimera/core/error.h"
#include "qimera/io/unpickler.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <map>
#include <random>
#include <typeinfo>

namespace qimera::io {
namespace {
using ::testing::HasSubstr;
using ::testing::StartsWith;
using namespace std::string_literals;

std::string le32(uint32_t value) {
  std::string bytes(4, '\0');
  for (int i = 0; i < 4; ++i) bytes[i] = static_cast<char>(value >> (8 * i));
  return bytes;
}

// Writes pickle opcodes the way Python's pickler (protocol 2, as torch.save uses) does.
class Pickle {
 public:
  explicit Pickle(int protocol = 2) { bytes_ += std::string("\x80") + static_cast<char>(protocol); }

  Pickle& op(char opcode) { return raw(std::string(1, opcode)); }
  Pickle& raw(const std::string& bytes) {
    bytes_ += bytes;
    return *this;
  }
  Pickle& global(const std::string& module, const std::string& name) {
    return raw("c" + module + "\n" + name + "\n");
  }
  Pickle& str(const std::string& text) {
    return raw("X" + le32(static_cast<uint32_t>(text.size())) + text);
  }
  Pickle& integer(int32_t value) { return raw("J" + le32(static_cast<uint32_t>(value))); }
  Pickle& ints(const std::vector<int32_t>& values) {
    op('(');
    for (int32_t v : values) integer(v);
    return op('t');
  }
  Pickle& ordered_dict() { return global("collections", "OrderedDict").op(')').op('R'); }

  // torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())
  Pickle& tensor(const std::string& storage_type, const std::string& key, int32_t numel,
                 int32_t offset, const std::vector<int32_t>& size,
                 const std::vector<int32_t>& stride) {
    global("torch._utils", "_rebuild_tensor_v2").op('(');
    op('(').str("storage").global("torch", storage_type).str(key).str("cpu").integer(numel).op('t');
    op('Q').integer(offset).ints(size).ints(stride).op('\x89').ordered_dict();
    return op('t').op('R');
  }

  std::string stop() const { return bytes_ + "."; }

 private:
  std::string bytes_;
};

template <typename T>
std::string bytes_of(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

// Serves records from memory and counts the reads.
struct Records {
  std::map<std::string, std::string> bytes;
  std::map<std::string, int> reads;

  detail::RecordSource loader() {
    const auto record = [this](const std::string& name) -> const std::string& {
      auto found = bytes.find(name);
      if (found == bytes.end()) fail("no record {}", name);
      return found->second;
    };
    return {[record](const std::string& name) -> uint64_t { return record(name).size(); },
            [this, record](const std::string& name, void* out, uint64_t size) {
              ++reads[name];
              std::memcpy(out, record(name).data(), size);
            }};
  }
};

StateDict unpickle(const std::string& pickle, Records& records) {
  return detail::unpickle_state_dict(pickle, records.loader(), "test.pt");
}

std::string error_of(const std::string& pickle, Records& records) {
  try {
    unpickle(pickle, records);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

Records float_records() {
  Records records;
  records.bytes["data/0"] = bytes_of(std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7});
  return records;
}

TEST(Unpickler, SharedStorageViewsAreCopiedApart) {
  Records records = float_records();
  Pickle p;
  p.ordered_dict().op('(');
  p.str("a").tensor("FloatStorage", "0", 8, 2, {2, 2}, {1, 2});  // [[2,4],[3,5]]
  p.str("b").tensor("FloatStorage", "0", 8, 7, {}, {});          // scalar 7
  p.op('u');
  const StateDict state = unpickle(p.stop(), records);
  ASSERT_EQ(state.size(), 2u);
  EXPECT_EQ(state[0].first, "a");
  EXPECT_TRUE(at::equal(state[0].second, at::tensor({2.f, 4.f, 3.f, 5.f}).reshape({2, 2})));
  EXPECT_TRUE(state[0].second.is_contiguous());
  EXPECT_EQ(state[1].first, "b");
  EXPECT_EQ(state[1].second.dim(), 0);
  EXPECT_EQ(state[1].second.item<float>(), 7.f);
  EXPECT_EQ(records.reads["data/0"], 1);  // one read per storage key
  state[0].second.fill_(-1);
  EXPECT_EQ(state[1].second.item<float>(), 7.f);  // entries do not alias
}

TEST(Unpickler, ReadsIntegerAndBoolStorages) {
  Records records;
  records.bytes["data/n"] = bytes_of(std::vector<int64_t>{-5});
  records.bytes["data/m"] = std::string("\x01\x00\x01", 3);
  Pickle p;
  p.ordered_dict().op('(');
  p.str("count").tensor("LongStorage", "n", 1, 0, {}, {});
  p.str("mask").tensor("BoolStorage", "m", 3, 0, {3}, {1});
  p.op('u');
  const StateDict state = unpickle(p.stop(), records);
  EXPECT_EQ(state[0].second.scalar_type(), at::kLong);
  EXPECT_EQ(state[0].second.item<int64_t>(), -5);
  EXPECT_TRUE(at::equal(state[1].second, at::tensor({1, 0, 1}, at::kByte).to(at::kBool)));

  records.bytes["data/m"] = std::string("\x01\x02\x01", 3);
  EXPECT_THAT(error_of(p.stop(), records), HasSubstr("other than 0 and 1"));
}

// What torch.save(model.state_dict()) ends with: OrderedDict attributes set by BUILD.
TEST(Unpickler, AcceptsMetadataBuildAndParameters) {
  Records records = float_records();
  Pickle p;
  p.ordered_dict().op('(');
  p.str("w").global("torch._utils", "_rebuild_parameter").op('(');
  p.tensor("FloatStorage", "0", 8, 0, {8}, {1}).op('\x88').ordered_dict().op('t').op('R');
  p.op('u');
  p.op('}').str("_metadata").ordered_dict().str("").op('}').str("version").raw("K\x01").op('s');
  p.op('s').op('s').op('b');
  const StateDict state = unpickle(p.stop(), records);
  ASSERT_EQ(state.size(), 1u);
  EXPECT_EQ(state[0].first, "w");
  EXPECT_FALSE(state[0].second.requires_grad());
  EXPECT_TRUE(at::equal(state[0].second, at::arange(8, at::kFloat)));
}

TEST(Unpickler, AcceptsSevenArgumentRebuildWithMetadata) {
  Records records = float_records();
  Pickle p;
  p.ordered_dict().op('(').str("w");
  p.global("torch._utils", "_rebuild_tensor_v2").op('(');
  p.op('(')
      .str("storage")
      .global("torch", "FloatStorage")
      .str("0")
      .str("cuda:0")
      .integer(8)
      .op('t');
  p.op('Q').integer(4).ints({4}).ints({1}).op('\x89').ordered_dict().op('}').op('t').op('R');
  p.op('u');
  const StateDict state = unpickle(p.stop(), records);
  EXPECT_TRUE(at::equal(state[0].second, at::tensor({4.f, 5.f, 6.f, 7.f})));
  EXPECT_EQ(state[0].second.device(), at::kCPU);
}

// Protocol 4 framing, short strings, MEMOIZE and STACK_GLOBAL, as pickle_protocol=4 produces.
TEST(Unpickler, UnderstandsProtocolFourOpcodes) {
  Records records = float_records();
  Pickle p(4);
  p.raw("\x95").raw(std::string("\x10\x00\x00\x00\x00\x00\x00\x00", 8));  // FRAME
  p.raw(
       "\x8c\x0b"
       "collections\x94")
      .raw(
          "\x8c\x0b"
          "OrderedDict\x94");                                        // memo 0, 1
  p.raw("\x93\x94").op(')').op('R').raw("\x94");                     // memo 2, 3
  p.raw("\x8d").raw(std::string("\x01\0\0\0\0\0\0\0", 8)).raw("k");  // BINUNICODE8
  p.tensor("FloatStorage", "0", 8, 0, {2}, {3}).op('s');
  p.raw("h\x01").tensor("FloatStorage", "0", 8, 5, {}, {}).op('s');  // BINGET of a MEMOIZEd str
  p.raw(
       "\x8c\x06"
       "unused")
      .op('0');  // POP
  const StateDict state = unpickle(p.stop(), records);
  ASSERT_EQ(state.size(), 2u);
  EXPECT_EQ(state[0].first, "k");
  EXPECT_TRUE(at::equal(state[0].second, at::tensor({0.f, 3.f})));
  EXPECT_EQ(state[1].first, "OrderedDict");
  EXPECT_EQ(state[1].second.item<float>(), 5.f);
}

TEST(Unpickler, UnwrapsCheckpointDicts) {
  Records records = float_records();
  for (const std::string entry : {"state_dict", "model"}) {
    Pickle p;
    p.op('}').op('(');
    p.str("epoch").raw("K\x03");
    p.str("lr").raw("G").raw(std::string("\x3f\xb9\x99\x99\x99\x99\x99\x9a", 8));
    p.str("history").op(']').op('(').raw("K\x01").raw("\x8a\x01\xff").op('e');
    p.str(entry)
        .ordered_dict()
        .str("fc.weight")
        .tensor("FloatStorage", "0", 8, 0, {2, 4}, {4, 1})
        .op('s');
    p.str("note").op('N');
    p.op('u');
    const StateDict state = unpickle(p.stop(), records);
    ASSERT_EQ(state.size(), 1u) << entry;
    EXPECT_EQ(state[0].first, "fc.weight");
    EXPECT_EQ(state[0].second.sizes(), at::IntArrayRef({2, 4}));
  }
}

TEST(Unpickler, NamesNonTensorEntries) {
  Records records = float_records();
  Pickle p;
  p.ordered_dict().op('(').str("fc.weight").tensor("FloatStorage", "0", 8, 0, {8}, {1});
  p.str("epoch").raw("K\x03").op('u');
  EXPECT_THAT(error_of(p.stop(), records),
              AllOf(StartsWith("test.pt"), HasSubstr("entry 'epoch' is an int, not a tensor")));

  Pickle q;
  q.op('}').str("state_dict").op('}').str("x").op(']').op('s').op('s');
  EXPECT_THAT(error_of(q.stop(), records), HasSubstr("'x' is a list, not a tensor"));

  Pickle r;
  r.op(']');
  EXPECT_THAT(error_of(r.stop(), records), HasSubstr("holds a list, not a state dict"));
}

TEST(Unpickler, RefusesForeignGlobals) {
  Records records;
  Pickle p;
  p.global("os", "system").str("echo hi").raw("\x85").op('R');
  EXPECT_THAT(error_of(p.stop(), records),
              AllOf(StartsWith("test.pt"), HasSubstr("'os.system'"), HasSubstr("byte 2")));

  Pickle q(4);
  q.raw(
      "\x8c\x08"
      "builtins\x8c\x04"
      "eval\x93");
  EXPECT_THAT(error_of(q.stop(), records), HasSubstr("'builtins.eval'"));

  Pickle r;  // an allowed module with a name outside the list
  r.global("torch._utils", "_rebuild_qtensor");
  EXPECT_THAT(error_of(r.stop(), records), HasSubstr("'torch._utils._rebuild_qtensor'"));
}

TEST(Unpickler, NamesUnknownAndUnsupportedOpcodes) {
  Records records;
  EXPECT_THAT(error_of(Pickle().raw("N\xff").stop(), records),
              AllOf(HasSubstr("unknown pickle opcode 0xff"), HasSubstr("byte 3")));
  EXPECT_THAT(error_of(Pickle().raw("i").stop(), records),
              AllOf(HasSubstr("INST"), HasSubstr("byte 2")));
  EXPECT_THAT(error_of(Pickle(6).stop(), records), HasSubstr("protocol 6"));
}

TEST(Unpickler, RejectsBrokenPrograms) {
  Records records = float_records();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {Pickle().op('R').stop(), "stack underflow"},
      {Pickle().op('(').op('N').op('s').stop(), "stack underflow"},  // cannot pop across a MARK
      {Pickle().raw("h\x05").stop(), "memo index 5"},
      {Pickle().raw("j\x01\x00\x00\x01"s).stop(), "memo index 16777217"},
      {Pickle().op('t').stop(), "no MARK"},
      {Pickle().op('(').op('N').stop(), "MARK left open"},
      {Pickle().op('N').op('N').stop(), "left on the stack"},
      {Pickle().op(']').str("k").op('N').op('s').stop(), "SETITEM on a list"},
      {Pickle().op('}').op('N').op('a').stop(), "APPEND to a dict"},
      {Pickle().raw("K\x01").op(')').op('R').stop(), "not callable"},
      {Pickle().global("torch", "FloatStorage").op(')').op('R').stop(),
       "FloatStorage is not callable"},
      {Pickle().op(']').op('}').op('b').stop(), "BUILD on a list"},
      {Pickle().raw("\x8a\x09").raw(std::string(9, '\x01')).stop(), "too large"},
      {Pickle().raw("X\xff\xff\xff\x7f").stop(), "truncated"},
      {Pickle().raw("cos").stop(), "no end of line"},
      {Pickle().raw("\x95\xff\x00\x00\x00\x00\x00\x00\x00"s).stop(), "frame longer"},
      {Pickle().op('}').op('(').str("a").op('u').stop(), "odd number"},
  };
  for (const auto& [pickle, message] : cases) {
    EXPECT_THAT(error_of(pickle, records), AllOf(StartsWith("test.pt: "), HasSubstr(message)))
        << message;
  }
}

TEST(Unpickler, RejectsBadTensorArguments) {
  Records records = float_records();
  // _rebuild_tensor_v2(<storage of 8 floats>, <arguments written by `args`>)
  auto rebuild = [](const std::function<void(Pickle&)>& args) {
    Pickle p;
    p.ordered_dict().str("t").global("torch._utils", "_rebuild_tensor_v2");
    p.op('(').op('(').str("storage").global("torch", "FloatStorage").str("0").str("cpu").integer(8);
    p.op('t').op('Q');
    args(p);
    p.op('t').op('R').op('s');
    return p.stop();
  };
  auto view = [&](int32_t offset, std::vector<int32_t> size, std::vector<int32_t> stride) {
    return rebuild(
        [=](Pickle& p) { p.integer(offset).ints(size).ints(stride).op('\x89').op('N'); });
  };
  EXPECT_THAT(error_of(view(0, {9}, {1}), records), HasSubstr("does not fit"));
  EXPECT_THAT(error_of(view(7, {2}, {1}), records), HasSubstr("does not fit"));
  EXPECT_THAT(error_of(view(-1, {1}, {1}), records), HasSubstr("does not fit"));
  EXPECT_THAT(error_of(view(9, {}, {}), records), HasSubstr("does not fit"));
  EXPECT_THAT(error_of(view(0, {2, -1}, {1, 1}), records), HasSubstr("does not fit"));
  EXPECT_THAT(error_of(view(0, {4, 4}, {0, 0}), records), HasSubstr("does not fit"));  // expanded
  EXPECT_THAT(error_of(view(0, {2}, {1, 1}), records), HasSubstr("1 sizes but 2 strides"));
  const int32_t big = 0x7fffffff;  // extent and element count overflow int64
  EXPECT_THAT(error_of(view(0, {big, big, big}, {big, big, big}), records),
              HasSubstr("does not fit"));
  EXPECT_EQ(unpickle(view(8, {0, 3}, {3, 1}), records)[0].second.sizes(), at::IntArrayRef({0, 3}));

  EXPECT_THAT(
      error_of(rebuild([](Pickle& p) { p.str("0").ints({2}).ints({1}).op('\x89').op('N'); }),
               records),
      HasSubstr("storage offset is a str, expected an int"));
  EXPECT_THAT(
      error_of(rebuild([](Pickle& p) { p.integer(0).integer(2).ints({1}).op('\x89').op('N'); }),
               records),
      HasSubstr("tensor size is an int, expected a tuple"));
  EXPECT_THAT(error_of(rebuild([](Pickle& p) { p.integer(0).ints({2}).ints({1}).op('N').op('N'); }),
                       records),
              HasSubstr("requires_grad"));
  EXPECT_THAT(error_of(rebuild([](Pickle& p) { p.integer(0); }), records),
              HasSubstr("called with 2 arguments"));
}

TEST(Unpickler, RejectsInconsistentStorages) {
  Records records = float_records();
  auto one = [](const std::string& type, const std::string& key, int32_t numel) {
    Pickle p;
    p.ordered_dict().str("t").tensor(type, key, numel, 0, {1}, {1}).op('s');
    return p.stop();
  };
  EXPECT_THAT(error_of(one("FloatStorage", "0", 9), records), HasSubstr("has 32 bytes"));
  EXPECT_THAT(error_of(one("DoubleStorage", "0", 8), records), HasSubstr("has 32 bytes"));
  EXPECT_THAT(error_of(one("FloatStorage", "1", 8), records), HasSubstr("no record data/1"));
  EXPECT_THAT(error_of(one("FloatStorage", "0", -1), records), HasSubstr("negative size"));

  Pickle p;  // the same key read as two different storages
  p.ordered_dict().op('(').str("a").tensor("FloatStorage", "0", 8, 0, {1}, {1});
  p.str("b").tensor("IntStorage", "0", 8, 0, {1}, {1}).op('u');
  EXPECT_THAT(error_of(p.stop(), records), HasSubstr("storage '0' is used as"));
}

// Every proper prefix of a valid program is an error, never a crash or a partial result.
TEST(Unpickler, EveryTruncationIsAnError) {
  Records records = float_records();
  Pickle p;
  p.ordered_dict().op('(').str("a").tensor("FloatStorage", "0", 8, 0, {2, 4}, {4, 1});
  p.str("b").tensor("FloatStorage", "0", 8, 1, {3}, {2}).op('u');
  const std::string full = p.stop();
  ASSERT_EQ(unpickle(full, records).size(), 2u);
  for (size_t length = 0; length < full.size(); ++length) {
    EXPECT_THROW(unpickle(full.substr(0, length), records), Error) << length;
  }
}

TEST(Unpickler, RandomBytesAreRefusedCleanly) {
  Records records = float_records();
  Pickle p;
  p.ordered_dict().op('(').str("a").tensor("FloatStorage", "0", 8, 0, {2, 4}, {4, 1});
  p.str("b").tensor("FloatStorage", "0", 8, 1, {3}, {2}).op('u');
  const std::string full = p.stop();
  std::mt19937 rng(7);
  for (int trial = 0; trial < 2000; ++trial) {
    std::string broken = full;
    const int flips = 1 + static_cast<int>(rng() % 3);
    for (int f = 0; f < flips; ++f) broken[rng() % broken.size()] = static_cast<char>(rng());
    try {
      unpickle(broken, records);
    } catch (const Error&) {
    } catch (const std::exception& e) {
      ADD_FAILURE() << "trial " << trial << ": " << typeid(e).name() << ": " << e.what();
    }
  }
}

}  // namespace
}  // namespace qimera::io
