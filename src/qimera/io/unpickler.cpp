#include "qimera/io/unpickler.h"

#include "qimera/core/error.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <unordered_map>
#include <variant>

// Storage records are copied as they are: torch.save writes them little-endian.
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "qimera's file formats assume a little-endian machine"
#endif

namespace qimera::io::detail {
namespace {

// ---- Values -------------------------------------------------------------------------------------

struct None {};

// The only classes and functions a pickle may name. Everything else is refused at GLOBAL time.
enum class Callable {
  OrderedDict,
  RebuildTensorV2,
  RebuildParameter,
  RebuildParameterWithState,
  Device,
  StorageType,
};

struct Global {
  Callable callable;
  at::ScalarType dtype = at::kFloat;  // the element type, for StorageType
};

struct Storage {
  at::Tensor data;  // flat, of the storage's dtype
};

// Tuples, lists and dicts live in the interpreter's arena and values refer to them by index: the
// memo and SETITEM need shared mutable objects, and an arena makes reference cycles and deep
// nesting built by a hostile file harmless (no recursive destruction, no leaks).
struct Ref {
  size_t index;
};

// Strings are shared so that DUP and BINGET of a long string cost nothing.
using String = std::shared_ptr<const std::string>;

using Value = std::variant<None, bool, int64_t, double, String, Global, Storage, at::Tensor, Ref>;

enum class Kind { Tuple, List, Dict };

struct Object {
  Kind kind;
  std::vector<Value> items;                           // tuple and list
  std::vector<std::pair<Value, Value>> entries;       // dict, in insertion order
  std::unordered_map<std::string, size_t> positions;  // dict: hashable key -> entry
};

struct AllowedGlobal {
  const char* module;
  const char* name;
  Global global;
};

const AllowedGlobal kAllowedGlobals[] = {
    {"collections", "OrderedDict", {Callable::OrderedDict}},
    {"torch._utils", "_rebuild_tensor_v2", {Callable::RebuildTensorV2}},
    {"torch._utils", "_rebuild_parameter", {Callable::RebuildParameter}},
    {"torch._utils", "_rebuild_parameter_with_state", {Callable::RebuildParameterWithState}},
    {"torch", "device", {Callable::Device}},
    {"torch", "DoubleStorage", {Callable::StorageType, at::kDouble}},
    {"torch", "FloatStorage", {Callable::StorageType, at::kFloat}},
    {"torch", "HalfStorage", {Callable::StorageType, at::kHalf}},
    {"torch", "BFloat16Storage", {Callable::StorageType, at::kBFloat16}},
    {"torch", "LongStorage", {Callable::StorageType, at::kLong}},
    {"torch", "IntStorage", {Callable::StorageType, at::kInt}},
    {"torch", "ShortStorage", {Callable::StorageType, at::kShort}},
    {"torch", "CharStorage", {Callable::StorageType, at::kChar}},
    {"torch", "ByteStorage", {Callable::StorageType, at::kByte}},
    {"torch", "BoolStorage", {Callable::StorageType, at::kBool}},
};

const char* callable_name(const Global& global) {
  for (const auto& allowed : kAllowedGlobals) {
    if (allowed.global.callable == global.callable &&
        (global.callable != Callable::StorageType || allowed.global.dtype == global.dtype)) {
      return allowed.name;
    }
  }
  return "?";
}

// Pickle opcodes, named as in Python's pickletools.
enum Opcode : uint8_t {
  MARK = '(',
  STOP = '.',
  POP = '0',
  POP_MARK = '1',
  DUP = '2',
  FLOAT = 'F',
  INT = 'I',
  BININT = 'J',
  BININT1 = 'K',
  LONG = 'L',
  BININT2 = 'M',
  NONE = 'N',
  PERSID = 'P',
  BINPERSID = 'Q',
  REDUCE = 'R',
  STRING = 'S',
  BINSTRING = 'T',
  SHORT_BINSTRING = 'U',
  UNICODE = 'V',
  BINUNICODE = 'X',
  APPEND = 'a',
  BUILD = 'b',
  GLOBAL = 'c',
  DICT = 'd',
  EMPTY_DICT = '}',
  APPENDS = 'e',
  GET = 'g',
  BINGET = 'h',
  INST = 'i',
  LONG_BINGET = 'j',
  LIST = 'l',
  EMPTY_LIST = ']',
  OBJ = 'o',
  PUT = 'p',
  BINPUT = 'q',
  LONG_BINPUT = 'r',
  SETITEM = 's',
  TUPLE = 't',
  EMPTY_TUPLE = ')',
  SETITEMS = 'u',
  BINFLOAT = 'G',
  // protocol 2
  PROTO = 0x80,
  NEWOBJ = 0x81,
  EXT1 = 0x82,
  EXT2 = 0x83,
  EXT4 = 0x84,
  TUPLE1 = 0x85,
  TUPLE2 = 0x86,
  TUPLE3 = 0x87,
  NEWTRUE = 0x88,
  NEWFALSE = 0x89,
  LONG1 = 0x8a,
  LONG4 = 0x8b,
  // protocol 3
  BINBYTES = 'B',
  SHORT_BINBYTES = 'C',
  // protocol 4
  SHORT_BINUNICODE = 0x8c,
  BINUNICODE8 = 0x8d,
  BINBYTES8 = 0x8e,
  EMPTY_SET = 0x8f,
  ADDITEMS = 0x90,
  FROZENSET = 0x91,
  NEWOBJ_EX = 0x92,
  STACK_GLOBAL = 0x93,
  MEMOIZE = 0x94,
  FRAME = 0x95,
  // protocol 5
  BYTEARRAY8 = 0x96,
  NEXT_BUFFER = 0x97,
  READONLY_BUFFER = 0x98,
};

// Names of the opcodes this interpreter does not implement, so that the error can say which one.
const char* unsupported_opcode_name(uint8_t op) {
  switch (op) {
    case FLOAT: return "FLOAT";
    case INT: return "INT";
    case LONG: return "LONG";
    case PERSID: return "PERSID";
    case STRING: return "STRING";
    case UNICODE: return "UNICODE";
    case GET: return "GET";
    case INST: return "INST";
    case OBJ: return "OBJ";
    case PUT: return "PUT";
    case NEWOBJ: return "NEWOBJ";
    case EXT1: return "EXT1";
    case EXT2: return "EXT2";
    case EXT4: return "EXT4";
    case EMPTY_SET: return "EMPTY_SET";
    case ADDITEMS: return "ADDITEMS";
    case FROZENSET: return "FROZENSET";
    case NEWOBJ_EX: return "NEWOBJ_EX";
    case BYTEARRAY8: return "BYTEARRAY8";
    case NEXT_BUFFER: return "NEXT_BUFFER";
    case READONLY_BUFFER: return "READONLY_BUFFER";
    default: return nullptr;
  }
}

// ---- The interpreter ----------------------------------------------------------------------------

class Unpickler {
 public:
  Unpickler(std::string_view data, const RecordSource& records, const std::string& source)
      : data_(data), records_(records), source_(source) {}

  Value run();
  [[noreturn]] void error(const std::string& message) const;
  std::string describe(const Value& value) const;  // "an int", "a list", "None"
  const Object* as_object(const Value& value, Kind kind) const;

 private:
  bool step();  // returns false at STOP

  // Input.
  size_t remaining() const { return data_.size() - pos_; }
  std::string_view take(uint64_t count);
  uint8_t u8() { return static_cast<uint8_t>(take(1)[0]); }
  template <typename T>
  T little_endian();
  std::string line();
  double big_endian_double();
  int64_t long_integer(uint64_t length);

  uint64_t length(int32_t value) const;
  void protocol(uint8_t version) const;
  void frame(uint64_t length) const;

  // Stack.
  void push(Value value) { stack_.push_back(std::move(value)); }
  // Values below the innermost MARK belong to an enclosing TUPLE, LIST, DICT or SETITEMS.
  bool nothing_above_mark() const {
    return stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back());
  }
  Value pop();
  Value& top();
  std::vector<Value> pop_n(size_t count);
  std::vector<Value> pop_to_mark();
  Value new_object(Kind kind, std::vector<Value> items = {});

  // Opcode groups.
  void push_string(uint64_t length) { push(std::make_shared<const std::string>(take(length))); }
  void push_global(std::string_view module, std::string_view name);
  void put(uint64_t index);
  void get(uint64_t index);
  void append(std::vector<Value> items);
  void set_items(std::vector<Value> keys_and_values);
  void build();
  void reduce();
  void persistent_load();

  // Calls of the allowed globals.
  Value call(const Global& callable, const std::vector<Value>& items);
  Value rebuild_tensor(const std::vector<Value>& args);
  Value rebuild_parameter(const std::vector<Value>& args);
  at::Tensor storage_for(const std::string& key, at::ScalarType dtype, int64_t numel);

  // Typed access to arguments.
  int64_t integer(const Value& value, const char* what) const;
  std::vector<int64_t> integers(const Value& value, const char* what) const;
  const std::string& text(const Value& value, const char* what) const;
  const Object& expect(const Value& value, Kind kind, const char* what) const;

  std::string_view data_;
  const RecordSource& records_;
  const std::string& source_;
  size_t pos_ = 0;
  size_t opcode_pos_ = 0;
  std::vector<Value> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Value> memo_;
  std::vector<Object> arena_;
  std::unordered_map<std::string, Storage> storages_;
};

void Unpickler::error(const std::string& message) const {
  fail("{}: {} (pickle opcode at byte {} of data.pkl)", source_, message, opcode_pos_);
}

std::string Unpickler::describe(const Value& value) const {
  struct Visitor {
    const Unpickler& self;
    std::string operator()(const None&) const { return "None"; }
    std::string operator()(bool) const { return "a bool"; }
    std::string operator()(int64_t) const { return "an int"; }
    std::string operator()(double) const { return "a float"; }
    std::string operator()(const String&) const { return "a str"; }
    std::string operator()(const Global& g) const {
      return std::string("the global ") + callable_name(g);
    }
    std::string operator()(const Storage&) const { return "a storage"; }
    std::string operator()(const at::Tensor&) const { return "a tensor"; }
    std::string operator()(const Ref& ref) const {
      switch (self.arena_[ref.index].kind) {
        case Kind::Tuple: return "a tuple";
        case Kind::List: return "a list";
        case Kind::Dict: return "a dict";
      }
      return "an object";
    }
  };
  return std::visit(Visitor{*this}, value);
}

const Object* Unpickler::as_object(const Value& value, Kind kind) const {
  const auto* ref = std::get_if<Ref>(&value);
  if (!ref || arena_[ref->index].kind != kind) return nullptr;
  return &arena_[ref->index];
}

std::string_view Unpickler::take(uint64_t count) {
  if (count > remaining()) {
    error(fmt::format("truncated: {} bytes needed, {} left", count, remaining()));
  }
  std::string_view bytes = data_.substr(pos_, count);
  pos_ += count;
  return bytes;
}

template <typename T>
T Unpickler::little_endian() {
  std::string_view bytes = take(sizeof(T));
  std::make_unsigned_t<T> value = 0;
  for (size_t i = 0; i < sizeof(T); ++i) {
    value |= static_cast<std::make_unsigned_t<T>>(static_cast<uint8_t>(bytes[i])) << (8 * i);
  }
  return static_cast<T>(value);
}

std::string Unpickler::line() {
  const size_t end = data_.find('\n', pos_);
  if (end == std::string_view::npos) error("truncated: a text argument has no end of line");
  std::string result(data_.substr(pos_, end - pos_));
  pos_ = end + 1;
  return result;
}

double Unpickler::big_endian_double() {
  std::string_view bytes = take(8);
  uint64_t bits = 0;
  for (char byte : bytes) bits = (bits << 8) | static_cast<uint8_t>(byte);
  double value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

// LONG1/LONG4: a little-endian two's complement integer of `length` bytes.
int64_t Unpickler::long_integer(uint64_t length) {
  if (length > 8) error(fmt::format("integer of {} bytes is too large", length));
  std::string_view bytes = take(length);
  uint64_t value = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    value |= uint64_t{static_cast<uint8_t>(bytes[i])} << (8 * i);
  }
  if (length > 0 && length < 8 && (static_cast<uint8_t>(bytes.back()) & 0x80)) {
    value |= ~uint64_t{0} << (8 * length);  // sign extension
  }
  return static_cast<int64_t>(value);
}

// BINSTRING and LONG4 lengths are signed.
uint64_t Unpickler::length(int32_t value) const {
  if (value < 0) error(fmt::format("negative length {}", value));
  return static_cast<uint64_t>(value);
}

void Unpickler::protocol(uint8_t version) const {
  if (version > 5) error(fmt::format("pickle protocol {} is newer than 5", version));
}

// A framing hint for buffered readers; only its length is checked.
void Unpickler::frame(uint64_t length) const {
  if (length > remaining()) error("truncated: frame longer than the data");
}

Value Unpickler::pop() {
  if (nothing_above_mark()) error("stack underflow");
  Value value = std::move(stack_.back());
  stack_.pop_back();
  return value;
}

Value& Unpickler::top() {
  if (nothing_above_mark()) error("stack underflow");
  return stack_.back();
}

std::vector<Value> Unpickler::pop_n(size_t count) {
  std::vector<Value> items(count);
  for (auto it = items.rbegin(); it != items.rend(); ++it) *it = pop();
  return items;
}

std::vector<Value> Unpickler::pop_to_mark() {
  if (marks_.empty()) error("no MARK to pop to");
  const size_t mark = marks_.back();
  marks_.pop_back();
  std::vector<Value> items(
      std::make_move_iterator(stack_.begin() + static_cast<std::ptrdiff_t>(mark)),
      std::make_move_iterator(stack_.end()));
  stack_.resize(mark);
  return items;
}

Value Unpickler::new_object(Kind kind, std::vector<Value> items) {
  arena_.push_back(Object{kind, std::move(items), {}, {}});
  return Ref{arena_.size() - 1};
}

void Unpickler::push_global(std::string_view module, std::string_view name) {
  for (const auto& allowed : kAllowedGlobals) {
    if (module == allowed.module && name == allowed.name) return push(allowed.global);
  }
  error(
      fmt::format("refusing to load the pickled global '{}.{}': a state dict does not contain it, "
                  "and unpickling it could run arbitrary code",
                  module, name));
}

void Unpickler::put(uint64_t index) { memo_[index] = top(); }

void Unpickler::get(uint64_t index) {
  auto found = memo_.find(index);
  if (found == memo_.end()) error(fmt::format("memo index {} was never stored", index));
  push(found->second);
}

void Unpickler::append(std::vector<Value> items) {
  const Value& list = top();
  const auto* ref = std::get_if<Ref>(&list);
  if (!ref || arena_[ref->index].kind != Kind::List) {
    error(fmt::format("APPEND to {}, not a list", describe(list)));
  }
  auto& target = arena_[ref->index].items;
  target.insert(target.end(), std::make_move_iterator(items.begin()),
                std::make_move_iterator(items.end()));
}

// Python's dict keeps the first position of a key and the last value; keys that are neither strings
// nor integers only occur in exotic pickles and are simply appended.
std::optional<std::string> hash_key(const Value& key) {
  if (const auto* s = std::get_if<String>(&key)) return "s" + **s;
  if (const auto* i = std::get_if<int64_t>(&key)) return "i" + std::to_string(*i);
  if (const auto* b = std::get_if<bool>(&key)) return std::string(*b ? "i1" : "i0");
  return std::nullopt;
}

void Unpickler::set_items(std::vector<Value> keys_and_values) {
  const Value& dict = top();
  const auto* ref = std::get_if<Ref>(&dict);
  if (!ref || arena_[ref->index].kind != Kind::Dict) {
    error(fmt::format("SETITEM on {}, not a dict", describe(dict)));
  }
  if (keys_and_values.size() % 2 != 0) error("SETITEMS with an odd number of items");
  Object& target = arena_[ref->index];
  for (size_t i = 0; i < keys_and_values.size(); i += 2) {
    Value& key = keys_and_values[i];
    Value& value = keys_and_values[i + 1];
    const auto hashed = hash_key(key);
    if (hashed) {
      auto [it, inserted] = target.positions.emplace(*hashed, target.entries.size());
      if (!inserted) {
        target.entries[it->second].second = std::move(value);
        continue;
      }
    }
    target.entries.emplace_back(std::move(key), std::move(value));
  }
}

// OrderedDict pickles its attributes (a state dict's "_metadata": per-module versions) with BUILD;
// they do not matter here. BUILD on anything else would set attributes of an object we never
// create.
void Unpickler::build() {
  Value state = pop();
  Value& target = top();
  if (!as_object(target, Kind::Dict)) {
    error(fmt::format("BUILD on {}, not a dict", describe(target)));
  }
  const bool dict_state = as_object(state, Kind::Dict) != nullptr;
  const bool slot_state = as_object(state, Kind::Tuple) != nullptr;
  if (!dict_state && !slot_state && !std::holds_alternative<None>(state)) {
    error(fmt::format("BUILD with {} state", describe(state)));
  }
}

void Unpickler::reduce() {
  Value args = pop();
  Value callable = pop();
  const auto* global = std::get_if<Global>(&callable);
  if (!global) error(fmt::format("REDUCE calls {}, which is not callable", describe(callable)));
  // A copy: calls may grow the arena, which moves its objects.
  const std::vector<Value> items = expect(args, Kind::Tuple, "REDUCE arguments").items;
  push(call(*global, items));
}

// A persistent id names a storage record of the archive: ('storage', storage type, key, location,
// numel). Tensors that share a storage share the record, so each record is read once.
void Unpickler::persistent_load() {
  Value pid = pop();
  const Object& id = expect(pid, Kind::Tuple, "persistent id");
  if (id.items.size() != 5) {
    error(fmt::format("persistent id has {} elements, expected 5", id.items.size()));
  }
  if (text(id.items[0], "persistent id tag") != "storage") {
    error(fmt::format("persistent id of kind '{}', expected 'storage'",
                      *std::get<String>(id.items[0])));
  }
  const auto* type = std::get_if<Global>(&id.items[1]);
  if (!type || type->callable != Callable::StorageType) {
    error(fmt::format("persistent id names {}, not a storage type", describe(id.items[1])));
  }
  const std::string& key = text(id.items[2], "storage key");
  text(id.items[3], "storage location");  // loaded on the CPU wherever it was saved
  const int64_t numel = integer(id.items[4], "storage size");
  push(Storage{storage_for(key, type->dtype, numel)});
}

at::Tensor Unpickler::storage_for(const std::string& key, at::ScalarType dtype, int64_t numel) {
  if (auto found = storages_.find(key); found != storages_.end()) {
    const at::Tensor& data = found->second.data;
    if (data.scalar_type() != dtype || data.numel() != numel) {
      error(fmt::format("storage '{}' is used as {} {} and as {} {}", key, data.numel(),
                        c10::toString(data.scalar_type()), numel, c10::toString(dtype)));
    }
    return data;
  }
  if (numel < 0) error(fmt::format("storage '{}' has negative size {}", key, numel));
  const std::string record = "data/" + key;
  const auto element_size = static_cast<int64_t>(c10::elementSize(dtype));
  const int64_t expected = numel > INT64_MAX / element_size ? -1 : numel * element_size;
  // Compared before anything is allocated or inflated: the pickle and the archive must agree.
  const uint64_t declared = records_.size(record);
  if (expected < 0 || declared != static_cast<uint64_t>(expected)) {
    error(fmt::format("record {} has {} bytes, but its storage holds {} x {} ({} bytes each)",
                      record, declared, numel, c10::toString(dtype), element_size));
  }
  at::Tensor data = at::empty({numel}, at::TensorOptions().dtype(dtype));
  records_.read(record, data.data_ptr(), declared);
  const char* raw = static_cast<const char*>(data.data_ptr());
  // Any byte other than 0 and 1 in a bool would be undefined behaviour in every later use.
  if (dtype == at::kBool &&
      std::any_of(raw, raw + expected, [](char c) { return (c & 0xfe) != 0; })) {
    error(fmt::format("bool storage '{}' holds values other than 0 and 1", key));
  }
  storages_.emplace(key, Storage{data});
  return data;
}

int64_t Unpickler::integer(const Value& value, const char* what) const {
  if (const auto* i = std::get_if<int64_t>(&value)) return *i;
  error(fmt::format("{} is {}, expected an int", what, describe(value)));
}

std::vector<int64_t> Unpickler::integers(const Value& value, const char* what) const {
  const Object& tuple = expect(value, Kind::Tuple, what);
  std::vector<int64_t> result;
  for (const Value& item : tuple.items) result.push_back(integer(item, what));
  return result;
}

const std::string& Unpickler::text(const Value& value, const char* what) const {
  if (const auto* s = std::get_if<String>(&value)) return **s;
  error(fmt::format("{} is {}, expected a str", what, describe(value)));
}

const Object& Unpickler::expect(const Value& value, Kind kind, const char* what) const {
  if (const Object* object = as_object(value, kind)) return *object;
  static const char* const names[] = {"tuple", "list", "dict"};
  error(
      fmt::format("{} is {}, expected a {}", what, describe(value), names[static_cast<int>(kind)]));
}

Value Unpickler::call(const Global& callable, const std::vector<Value>& items) {
  switch (callable.callable) {
    case Callable::OrderedDict:
      if (!items.empty()) error("OrderedDict called with arguments");
      return new_object(Kind::Dict);
    case Callable::RebuildTensorV2: return rebuild_tensor(items);
    case Callable::RebuildParameter:
    case Callable::RebuildParameterWithState: return rebuild_parameter(items);
    case Callable::Device:
      if (items.empty() || items.size() > 2) error("torch.device called with wrong arguments");
      return std::make_shared<const std::string>(text(items[0], "device type"));
    case Callable::StorageType: break;
  }
  error(fmt::format("{} is not callable", callable_name(callable)));
}

// Checks that a view (offset, size, stride) stays inside a storage of `storage_numel` elements.
bool view_fits(int64_t offset, const std::vector<int64_t>& size, const std::vector<int64_t>& stride,
               int64_t storage_numel) {
  if (offset < 0 || offset > storage_numel) return false;
  bool empty = false;
  for (size_t d = 0; d < size.size(); ++d) {
    if (size[d] < 0 || stride[d] < 0) return false;
    empty = empty || size[d] == 0;
  }
  if (empty) return true;
  int64_t numel = 1;
  int64_t last = offset;
  for (size_t d = 0; d < size.size(); ++d) {
    int64_t extent = 0;
    if (__builtin_mul_overflow(size[d] - 1, stride[d], &extent) ||
        __builtin_add_overflow(last, extent, &last) ||
        __builtin_mul_overflow(numel, size[d], &numel)) {
      return false;
    }
  }
  // An expanded view (more elements than its storage) would be materialised by the copy below; a
  // corrupt file could ask for petabytes that way, and state dicts do not contain such views.
  return last < storage_numel && numel <= storage_numel;
}

// torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
// backward_hooks[, metadata]). The metadata (PyTorch 2.x, conjugate/negative bits of complex
// tensors) does not apply to the real dtypes a storage here can have.
Value Unpickler::rebuild_tensor(const std::vector<Value>& args) {
  if (args.size() != 6 && args.size() != 7) {
    error(fmt::format("_rebuild_tensor_v2 called with {} arguments, expected 6 or 7", args.size()));
  }
  const auto* storage = std::get_if<Storage>(&args[0]);
  if (!storage) error(fmt::format("_rebuild_tensor_v2 of {}, not a storage", describe(args[0])));
  const int64_t offset = integer(args[1], "storage offset");
  const auto size = integers(args[2], "tensor size");
  const auto stride = integers(args[3], "tensor stride");
  if (size.size() != stride.size()) {
    error(fmt::format("tensor has {} sizes but {} strides", size.size(), stride.size()));
  }
  if (!std::holds_alternative<bool>(args[4])) error("requires_grad is not a bool");
  if (!view_fits(offset, size, stride, storage->data.numel())) {
    error(
        fmt::format("tensor view (offset {}, size {}, stride {}) does not fit in its storage of {} "
                    "elements",
                    offset, fmt::join(size, ","), fmt::join(stride, ","), storage->data.numel()));
  }
  // A copy, so that no two entries of the state dict alias one storage.
  return storage->data.as_strided(size, stride, offset).clone(at::MemoryFormat::Contiguous);
}

// torch._utils._rebuild_parameter(data, requires_grad, backward_hooks) and, in PyTorch 2.x,
// _rebuild_parameter_with_state(data, requires_grad, backward_hooks, state).
Value Unpickler::rebuild_parameter(const std::vector<Value>& args) {
  if (args.size() != 3 && args.size() != 4) {
    error(fmt::format("_rebuild_parameter called with {} arguments", args.size()));
  }
  if (!std::holds_alternative<at::Tensor>(args[0])) {
    error(fmt::format("_rebuild_parameter of {}, not a tensor", describe(args[0])));
  }
  return args[0];
}

Value Unpickler::run() {
  while (step()) {
  }
  if (!marks_.empty()) error("MARK left open at STOP");
  Value result = pop();
  if (!stack_.empty()) error(fmt::format("{} values left on the stack at STOP", stack_.size()));
  return result;
}

bool Unpickler::step() {
  opcode_pos_ = pos_;
  const uint8_t op = u8();
  switch (op) {
    case PROTO: protocol(u8()); break;
    case FRAME: frame(little_endian<uint64_t>()); break;
    case STOP: return false;
    case MARK: marks_.push_back(stack_.size()); break;
    case POP: pop(); break;
    case POP_MARK: pop_to_mark(); break;
    case DUP: push(top()); break;
    case NONE: push(None{}); break;
    case NEWTRUE: push(true); break;
    case NEWFALSE: push(false); break;
    case BININT: push(int64_t{little_endian<int32_t>()}); break;
    case BININT1: push(int64_t{u8()}); break;
    case BININT2: push(int64_t{little_endian<uint16_t>()}); break;
    case LONG1: push(long_integer(u8())); break;
    case LONG4: push(long_integer(length(little_endian<int32_t>()))); break;
    case BINFLOAT: push(big_endian_double()); break;
    case SHORT_BINUNICODE:
    case SHORT_BINSTRING:
    case SHORT_BINBYTES: push_string(u8()); break;
    case BINUNICODE:
    case BINBYTES: push_string(little_endian<uint32_t>()); break;
    case BINSTRING: push_string(length(little_endian<int32_t>())); break;
    case BINUNICODE8:
    case BINBYTES8: push_string(little_endian<uint64_t>()); break;
    case EMPTY_TUPLE: push(new_object(Kind::Tuple)); break;
    case TUPLE: push(new_object(Kind::Tuple, pop_to_mark())); break;
    case TUPLE1:
    case TUPLE2:
    case TUPLE3: push(new_object(Kind::Tuple, pop_n(op - TUPLE1 + 1))); break;
    case EMPTY_LIST: push(new_object(Kind::List)); break;
    case LIST: push(new_object(Kind::List, pop_to_mark())); break;
    case APPEND: append(pop_n(1)); break;
    case APPENDS: append(pop_to_mark()); break;
    case EMPTY_DICT: push(new_object(Kind::Dict)); break;
    case DICT: {
      auto items = pop_to_mark();
      push(new_object(Kind::Dict));
      set_items(std::move(items));
      break;
    }
    case SETITEM: set_items(pop_n(2)); break;
    case SETITEMS: set_items(pop_to_mark()); break;
    case GLOBAL: {
      const std::string module = line();
      push_global(module, line());
      break;
    }
    case STACK_GLOBAL: {
      const auto names = pop_n(2);
      push_global(text(names[0], "STACK_GLOBAL module"), text(names[1], "STACK_GLOBAL name"));
      break;
    }
    case BINPUT: put(u8()); break;
    case LONG_BINPUT: put(little_endian<uint32_t>()); break;
    case MEMOIZE: put(memo_.size()); break;
    case BINGET: get(u8()); break;
    case LONG_BINGET: get(little_endian<uint32_t>()); break;
    case BINPERSID: persistent_load(); break;
    case REDUCE: reduce(); break;
    case BUILD: build(); break;
    default:
      if (const char* name = unsupported_opcode_name(op)) {
        error(fmt::format("unsupported pickle opcode {} (0x{:02x})", name, op));
      }
      error(fmt::format("unknown pickle opcode 0x{:02x}", op));
  }
  return true;
}

// ---- From the unpickled object to a state dict --------------------------------------------------

bool holds_tensors(const Object& dict) {
  for (const auto& [key, value] : dict.entries) {
    if (!std::holds_alternative<at::Tensor>(value)) return false;
  }
  return true;
}

const Value* find_entry(const Object& dict, const std::string& name) {
  for (const auto& [key, value] : dict.entries) {
    const auto* s = std::get_if<String>(&key);
    if (s && **s == name) return &value;
  }
  return nullptr;
}

StateDict to_state_dict(const Unpickler& unpickler, const Object& dict, const std::string& where) {
  StateDict state;
  state.reserve(dict.entries.size());
  for (const auto& [key, value] : dict.entries) {
    const auto* name = std::get_if<String>(&key);
    if (!name) fail("{}: has {} as a key", where, unpickler.describe(key));
    const auto* tensor = std::get_if<at::Tensor>(&value);
    if (!tensor) {
      fail("{}: entry '{}' is {}, not a tensor", where, **name, unpickler.describe(value));
    }
    state.emplace_back(**name, *tensor);
  }
  return state;
}

// Training checkpoints wrap the state dict: {"state_dict": ..., "epoch": ..., "optimizer": ...}.
StateDict extract_state_dict(const Unpickler& unpickler, const Value& top,
                             const std::string& source) {
  const Object* dict = unpickler.as_object(top, Kind::Dict);
  if (!dict) fail("{}: the file holds {}, not a state dict", source, unpickler.describe(top));
  if (holds_tensors(*dict)) return to_state_dict(unpickler, *dict, source);
  for (const char* name : {"state_dict", "model"}) {
    const Value* inner = find_entry(*dict, name);
    const Object* inner_dict = inner ? unpickler.as_object(*inner, Kind::Dict) : nullptr;
    if (inner_dict) {
      spdlog::info("{}: a checkpoint; using its '{}' entry", source, name);
      return to_state_dict(unpickler, *inner_dict, fmt::format("{}['{}']", source, name));
    }
  }
  return to_state_dict(unpickler, *dict, source);
}

}  // namespace

StateDict unpickle_state_dict(std::string_view pickle, const RecordSource& records,
                              const std::string& source) {
  Unpickler unpickler(pickle, records, source);
  try {
    const Value top = unpickler.run();
    return extract_state_dict(unpickler, top, source);
  } catch (const c10::Error& e) {
    // LibTorch refusing a view or an allocation: still the file's fault.
    fail("{}: invalid tensor data: {}", source, e.what_without_backtrace());
  }
}

}  // namespace qimera::io::detail
