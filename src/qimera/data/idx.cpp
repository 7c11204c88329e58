#include "qimera/data/idx.h"

#include "qimera/core/atomic_file.h"
#include "qimera/core/error.h"
#include "qimera/core/input_file.h"
#include "qimera/data/image_codec.h"  // kMaxImagePixels

#include <ATen/ATen.h>
#include <fmt/ranges.h>

#include <cstring>

namespace qimera::data {
namespace fs = std::filesystem;
namespace {

constexpr uint32_t kImagesMagic = 0x00000803;
constexpr uint32_t kLabelsMagic = 0x00000801;

uint32_t big_endian_u32(const std::string& bytes, size_t offset) {
  uint32_t value = 0;
  for (size_t i = 0; i < 4; ++i) {
    value = (value << 8) | static_cast<uint8_t>(bytes[offset + i]);
  }
  return value;
}

void append_big_endian_u32(std::string& out, uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(value >> shift));
}

/// Reads and checks the header of an IDX file; returns the dimensions. Every size is checked, with
/// overflow in mind, against the file's real length before anything is allocated: the file must
/// hold exactly the bytes the header promises.
std::vector<int64_t> read_header(const InputFile& file, uint32_t magic, const char* kind) {
  const std::string& name = file.name();
  const size_t dims = magic & 0xff;
  const size_t header = 4 + 4 * dims;
  require(file.size() >= 4, "{}: {} bytes is too short for an IDX file (truncated?)", name,
          file.size());
  const std::string start = file.read(0, 4);
  const uint32_t found = big_endian_u32(start, 0);
  require((found >> 16) != 0x1f8b, "{}: the file is gzip-compressed; gunzip it first", name);
  require(found == magic, "{}: wrong magic number {:#010x}, expected {:#010x} for an IDX {} file",
          name, found, magic, kind);
  require(file.size() >= header, "{}: truncated IDX header ({} bytes, need {})", name, file.size(),
          header);
  const std::string sizes = file.read(4, 4 * dims);
  std::vector<int64_t> shape;
  uint64_t payload = 1;
  bool overflow = false;
  for (size_t d = 0; d < dims; ++d) {
    shape.push_back(big_endian_u32(sizes, 4 * d));
    overflow = overflow || __builtin_mul_overflow(payload, static_cast<uint64_t>(shape.back()), &payload);
  }
  if (dims == 3) {
    require(shape[1] > 0 && shape[2] > 0, "{}: images of {}x{} pixels; an IDX image file needs at "
            "least 1x1", name, shape[1], shape[2]);
    require(static_cast<uint64_t>(shape[1]) * static_cast<uint64_t>(shape[2]) <=
                static_cast<uint64_t>(kMaxImagePixels), "{}: images of {}x{} pixels, more than the "
            "{} pixels this reader accepts", name, shape[1], shape[2], kMaxImagePixels);
  }
  const uint64_t data = file.size() - header;
  require(!overflow && payload <= data,
          "{}: truncated: the header promises {} of shape {} ({} bytes) but the file has {} bytes",
          name, kind, shape, overflow ? std::string("more than 2^64") : std::to_string(header + payload),
          file.size());
  require(payload == data, "{}: {} unexpected trailing bytes after {} of shape {}", name,
          data - payload, kind, shape);
  return shape;
}

at::Tensor read_payload(const InputFile& file, size_t offset, std::vector<int64_t> shape) {
  auto out = at::empty(shape, at::kByte);
  if (out.numel() > 0) file.read_into(offset, out.data_ptr<uint8_t>(), static_cast<size_t>(out.numel()));
  return out;
}

void check_label_range(const at::Tensor& labels, int64_t num_classes, const fs::path& path) {
  if (labels.numel() == 0) return;
  const auto bad = (labels >= num_classes).nonzero();
  if (bad.size(0) == 0) return;
  const int64_t record = bad[0][0].item<int64_t>();
  fail("{}: label {} of record {} is outside 0..{}", path.string(), labels[record].item<int64_t>(),
       record, num_classes - 1);
}

}  // namespace

at::Tensor read_idx_images(const fs::path& path) {
  const InputFile file(path);
  const auto shape = read_header(file, kImagesMagic, "images");
  return read_payload(file, 16, {shape[0], 1, shape[1], shape[2]});
}

at::Tensor read_idx_labels(const fs::path& path) {
  const InputFile file(path);
  const auto shape = read_header(file, kLabelsMagic, "labels");
  return read_payload(file, 8, {shape[0]}).to(at::kLong);
}

std::shared_ptr<TensorDataset> open_idx(const fs::path& images_path, const fs::path& labels_path,
                                        int64_t num_classes, std::string description,
                                        std::vector<std::string> class_names) {
  auto images = read_idx_images(images_path);
  auto labels = read_idx_labels(labels_path);
  require(images.size(0) == labels.size(0), "{} has {} images but {} has {} labels",
          images_path.string(), images.size(0), labels_path.string(), labels.size(0));
  if (num_classes <= 0) {
    num_classes = labels.numel() == 0 ? 1 : labels.max().item<int64_t>() + 1;
  }
  check_label_range(labels, num_classes, labels_path);
  if (description.empty()) {
    description = fmt::format("IDX {} ({} images)", images_path.string(), images.size(0));
  }
  return std::make_shared<TensorDataset>(std::move(images), std::move(labels), num_classes,
                                         std::move(description), std::move(class_names));
}

void write_idx_images(const fs::path& path, const at::Tensor& images) {
  require(images.scalar_type() == at::kByte, "write_idx_images({}): images must be uint8",
          path.string());
  auto grey = images;
  if (grey.dim() == 4) {
    require(grey.size(1) == 1, "write_idx_images({}): IDX holds one channel, got shape {}",
            path.string(), grey.sizes());
    grey = grey.squeeze(1);
  }
  require(grey.dim() == 3, "write_idx_images({}): expected [N,H,W] or [N,1,H,W], got shape {}",
          path.string(), images.sizes());
  grey = grey.contiguous();
  std::string out;
  append_big_endian_u32(out, kImagesMagic);
  for (const int64_t size : grey.sizes()) append_big_endian_u32(out, static_cast<uint32_t>(size));
  out.append(reinterpret_cast<const char*>(grey.data_ptr<uint8_t>()),
             static_cast<size_t>(grey.numel()));
  write_file_atomically(path, out);
}

void write_idx_labels(const fs::path& path, const at::Tensor& labels) {
  require(labels.dim() == 1, "write_idx_labels({}): labels must be 1-d", path.string());
  const auto values = labels.to(at::kLong).contiguous();
  if (values.numel() > 0) {
    require(values.min().item<int64_t>() >= 0 && values.max().item<int64_t>() <= 255,
            "write_idx_labels({}): IDX labels must be in 0..255", path.string());
  }
  const auto bytes = values.to(at::kByte).contiguous();
  std::string out;
  append_big_endian_u32(out, kLabelsMagic);
  append_big_endian_u32(out, static_cast<uint32_t>(bytes.numel()));
  out.append(reinterpret_cast<const char*>(bytes.data_ptr<uint8_t>()),
             static_cast<size_t>(bytes.numel()));
  write_file_atomically(path, out);
}

}  // namespace qimera::data
