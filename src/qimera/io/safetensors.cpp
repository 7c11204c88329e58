#include "qimera/io/safetensors.h"

#include "qimera/core/atomic_file.h"
#include "qimera/core/error.h"
#include "qimera/core/input_file.h"
#include "qimera/core/json_value.h"

#include <ATen/ATen.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <optional>
#include <set>

// Tensor bytes are copied as they are: the format, like PyTorch's, is little-endian.
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "qimera's file formats assume a little-endian machine"
#endif

namespace qimera::io {
namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;  // keeps the header's tensor order

namespace {

// The reference implementation refuses larger headers too; it also bounds what a corrupt length
// field can make us parse.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

const std::pair<const char*, at::ScalarType> kDtypes[] = {
    {"F64", at::kDouble}, {"F32", at::kFloat}, {"F16", at::kHalf},  {"BF16", at::kBFloat16},
    {"I64", at::kLong},   {"I32", at::kInt},   {"I16", at::kShort}, {"I8", at::kChar},
    {"U8", at::kByte},    {"BOOL", at::kBool},
};

struct Entry {
  std::string name;
  at::ScalarType dtype;
  std::vector<int64_t> shape;
  uint64_t begin, end;  // byte range in the data section
};

at::ScalarType dtype_of(const std::string& code, const std::string& where) {
  for (const auto& [name, dtype] : kDtypes) {
    if (code == name) return dtype;
  }
  fail("{}: unsupported dtype '{}'", where, code);
}

const char* code_of(at::ScalarType dtype, const std::string& where) {
  for (const auto& [name, type] : kDtypes) {
    if (dtype == type) return name;
  }
  fail("{}: dtype {} cannot be stored in safetensors", where, c10::toString(dtype));
}

// A value for an error message: bounded, and never a recursive dump() of what a hostile header holds.
std::string brief(const Json& value) { return json_excerpt(value); }

uint64_t unsigned_number(const Json& value, const std::string& where) {
  if (!value.is_number_unsigned()) {
    fail("{} is {}, not a non-negative integer", where, brief(value));
  }
  return value.get<uint64_t>();
}

Entry parse_entry(const std::string& name, const Json& info, const std::string& source) {
  const std::string where = fmt::format("{}: tensor '{}'", source, name);
  if (!info.is_object()) fail("{} is described by {}, not an object", where, brief(info));
  for (const char* field : {"dtype", "shape", "data_offsets"}) {
    if (!info.contains(field)) fail("{} has no '{}'", where, field);
  }
  const Json& dtype = info["dtype"];
  if (!dtype.is_string()) fail("{}: dtype is {}, not a string", where, brief(dtype));
  Entry entry{name, dtype_of(dtype.get<std::string>(), where), {}, 0, 0};
  const Json& shape = info["shape"];
  const Json& offsets = info["data_offsets"];
  if (!shape.is_array()) fail("{}: shape is {}, not a list", where, brief(shape));
  if (!offsets.is_array() || offsets.size() != 2) {
    fail("{}: data_offsets is {}, not [begin, end]", where, brief(offsets));
  }
  uint64_t nbytes = c10::elementSize(entry.dtype);
  for (const Json& dim : shape) {
    const uint64_t size = unsigned_number(dim, where + " shape entry");
    if (size > static_cast<uint64_t>(INT64_MAX) || __builtin_mul_overflow(nbytes, size, &nbytes)) {
      fail("{}: shape [{}, {}, ...] is too large", where, fmt::join(entry.shape, ", "), size);
    }
    entry.shape.push_back(static_cast<int64_t>(size));
  }
  entry.begin = unsigned_number(offsets[0], where + " data offset");
  entry.end = unsigned_number(offsets[1], where + " data offset");
  if (entry.end < entry.begin) {
    fail("{}: data_offsets [{}, {}] end before they begin", where, entry.begin, entry.end);
  }
  if (entry.end - entry.begin != nbytes) {
    fail("{}: data_offsets [{}, {}] hold {} bytes, but {} [{}] takes {}", where, entry.begin,
         entry.end, entry.end - entry.begin, dtype.get<std::string>(), fmt::join(entry.shape, ","),
         nbytes);
  }
  return entry;
}

std::map<std::string, std::string> parse_metadata(const Json& value, const std::string& source) {
  if (!value.is_object()) fail("{}: __metadata__ is not an object", source);
  std::map<std::string, std::string> metadata;
  for (const auto& [key, text] : value.items()) {
    if (!text.is_string()) fail("{}: __metadata__ entry '{}' is not a string", source, key);
    metadata.emplace(key, text.get<std::string>());
  }
  return metadata;
}

// The JSON parser would keep one of two equal keys silently.
Json parse_header(std::string_view text, const std::string& source) {
  if (text.empty() || text.front() != '{') fail("{}: the header is not a JSON object", source);
  check_json_depth(text, source + " header");
  std::set<std::string> names;
  std::optional<std::string> duplicate;
  const Json::parser_callback_t callback = [&](int depth, Json::parse_event_t event, Json& parsed) {
    if (event == Json::parse_event_t::key && depth == 1 &&
        !names.insert(parsed.get<std::string>()).second) {
      duplicate = parsed.get<std::string>();
    }
    return true;
  };
  try {
    Json header = Json::parse(text.begin(), text.end(), callback);
    if (duplicate) fail("{}: the header names '{}' twice", source, *duplicate);
    if (!header.is_object()) fail("{}: the header is not a JSON object", source);
    return header;
  } catch (const nlohmann::json::exception& e) {
    fail("{}: the header is not valid JSON: {}", source, e.what());
  }
}

// The byte ranges must tile the data section exactly, as the reference implementation requires:
// overlaps would alias tensors, gaps and trailing bytes mean a damaged or foreign file.
void check_coverage(std::vector<Entry> entries, uint64_t data_size, const std::string& source) {
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.begin, a.end) < std::tie(b.begin, b.end);
  });
  uint64_t cursor = 0;
  for (const Entry& entry : entries) {
    if (entry.begin != cursor) {
      fail("{}: tensor '{}' starts at byte {} of the data, expected {} ({})", source, entry.name,
           entry.begin, cursor, entry.begin < cursor ? "it overlaps another" : "a gap before it");
    }
    cursor = entry.end;
  }
  if (cursor != data_size) {
    fail("{}: the tensors cover {} bytes but the data section has {}", source, cursor, data_size);
  }
}

// Reads the tensor's bytes straight from the file into its storage: no second copy of the file.
at::Tensor read_tensor(const Entry& entry, const InputFile& file, uint64_t data_start) {
  at::Tensor tensor = at::empty(entry.shape, at::TensorOptions().dtype(entry.dtype));
  const size_t nbytes = entry.end - entry.begin;
  if (nbytes == 0) return tensor;
  file.read_into(data_start + entry.begin, tensor.data_ptr(), nbytes);
  // Any byte other than 0 and 1 in a bool would be undefined behaviour in every later use.
  const auto* bytes = static_cast<const uint8_t*>(tensor.data_ptr());
  if (entry.dtype == at::kBool &&
      std::any_of(bytes, bytes + nbytes, [](uint8_t c) { return (c & 0xfe) != 0; })) {
    fail("{}: bool tensor '{}' holds values other than 0 and 1", file.name(), entry.name);
  }
  return tensor;
}

uint64_t header_length(const InputFile& file) {
  if (file.size() < 8) {
    fail("{}: {} bytes, too short for a safetensors file", file.name(), file.size());
  }
  const std::string bytes = file.read(0, 8);
  uint64_t length = 0;
  for (int i = 7; i >= 0; --i) length = (length << 8) | static_cast<uint8_t>(bytes[i]);
  if (length > file.size() - 8 || length > kMaxHeaderBytes) {
    fail("{}: header length {} exceeds the file size {} (not a safetensors file, or truncated)",
         file.name(), length, file.size());
  }
  return length;
}

std::string serialized_header(const StateDict& state,
                              const std::map<std::string, std::string>& metadata,
                              const std::vector<at::Tensor>& tensors, const std::string& target) {
  Json header = Json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (size_t i = 0; i < state.size(); ++i) {
    const uint64_t nbytes = tensors[i].nbytes();
    header[state[i].first] = {{"dtype", code_of(tensors[i].scalar_type(), target)},
                              {"shape", tensors[i].sizes().vec()},
                              {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    fail("{}: cannot write the header: {}", target, e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps the data 8-byte aligned, as the spec does
  return text;
}

std::vector<at::Tensor> cpu_contiguous(const StateDict& state, const std::string& target) {
  std::set<std::string> names;
  std::vector<at::Tensor> tensors;
  for (const auto& [name, tensor] : state) {
    if (name == "__metadata__") fail("{}: a tensor cannot be named __metadata__", target);
    if (!names.insert(name).second) fail("{}: the state dict has the key '{}' twice", target, name);
    if (!tensor.defined()) fail("{}: entry '{}' holds no tensor", target, name);
    code_of(tensor.scalar_type(), fmt::format("{}: tensor '{}'", target, name));
    tensors.push_back(tensor.detach().to(at::kCPU).contiguous());
  }
  return tensors;
}

}  // namespace

StateDict read_safetensors(const fs::path& path, std::map<std::string, std::string>* metadata) {
  const InputFile file(path);
  const std::string& source = file.name();
  const uint64_t length = header_length(file);
  const Json header = parse_header(file.read(8, static_cast<size_t>(length)), source);
  std::vector<Entry> entries;
  if (metadata) metadata->clear();
  for (const auto& [name, info] : header.items()) {
    if (name != "__metadata__") {
      entries.push_back(parse_entry(name, info, source));
      continue;
    }
    auto parsed = parse_metadata(info, source);
    if (metadata) *metadata = std::move(parsed);
  }
  // Every size was checked against the file's real length here, before any tensor is allocated.
  check_coverage(entries, file.size() - 8 - length, source);
  StateDict state;
  state.reserve(entries.size());
  for (const Entry& entry : entries) {
    state.emplace_back(entry.name, read_tensor(entry, file, 8 + length));
  }
  return state;
}

void write_safetensors(const fs::path& path, const StateDict& state,
                       const std::map<std::string, std::string>& metadata) {
  const std::string target = path.string();
  const std::vector<at::Tensor> tensors = cpu_contiguous(state, target);
  const std::string header = serialized_header(state, metadata, tensors, target);
  write_file_atomically(path, [&](OutputFile& out) {
    char length[8];
    for (int i = 0; i < 8; ++i) length[i] = static_cast<char>(uint64_t{header.size()} >> (8 * i));
    out.write(length, 8);
    out.write(header);
    for (const at::Tensor& tensor : tensors) {
      if (tensor.nbytes() == 0) continue;  // an empty tensor's data pointer may be null
      out.write(tensor.data_ptr(), tensor.nbytes());
    }
  });
}

}  // namespace qimera::io
