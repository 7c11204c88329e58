#include "qimera/io/zip_archive.h"

#include "qimera/core/error.h"

#ifdef QIMERA_HAVE_ZLIB
#include <zlib.h>
#endif

#include <algorithm>
#include <cstring>
#include <memory>

namespace qimera::io {
namespace {

constexpr uint32_t kEndOfDirectory = 0x06054b50;
constexpr uint32_t kZip64EndOfDirectory = 0x06064b50;
constexpr uint32_t kZip64Locator = 0x07064b50;
constexpr uint32_t kDirectoryEntry = 0x02014b50;
constexpr uint32_t kLocalHeader = 0x04034b50;
constexpr size_t kEndOfDirectoryBytes = 22;
constexpr size_t kDirectoryEntryBytes = 46;
constexpr size_t kLocalHeaderBytes = 30;
// Deflate emits at least one bit per 258-byte match plus block overhead: no stream inflates by
// more than about 1032:1, so a larger declared ratio is a lie about the size.
constexpr uint64_t kMaxDeflateRatio = 1032;

uint64_t little_endian(const char* bytes, size_t count) {
  uint64_t value = 0;
  for (size_t i = count; i-- > 0;) value = (value << 8) | static_cast<uint8_t>(bytes[i]);
  return value;
}

// Reads fields of a little-endian record with bounds checks.
class Fields {
 public:
  Fields(const std::string& bytes, size_t offset, const ZipArchive& archive)
      : bytes_(bytes), pos_(offset), archive_(archive) {}
  uint64_t u16() { return take(2); }
  uint64_t u32() { return take(4); }
  uint64_t u64() { return take(8); }
  std::string text(size_t count) {
    need(count);
    std::string out = bytes_.substr(pos_, count);
    pos_ += count;
    return out;
  }
  void skip(size_t count) {
    need(count);
    pos_ += count;
  }
  size_t position() const { return pos_; }

 private:
  void need(size_t count) const {
    if (count > bytes_.size() - pos_) {
      fail("{}: damaged zip archive: a record of its directory is cut short", archive_.source());
    }
  }
  uint64_t take(size_t count) {
    need(count);
    const uint64_t value = little_endian(bytes_.data() + pos_, count);
    pos_ += count;
    return value;
  }
  const std::string& bytes_;
  size_t pos_;
  const ZipArchive& archive_;
};

struct Directory {
  uint64_t entries = 0;
  uint64_t size = 0;
  uint64_t offset = 0;
};

// zip64's extra field: the 64-bit values of the fields that were saturated, in this order.
void apply_zip64(const std::string& extra, ZipRecord& record, uint64_t& header_offset,
                 bool size_saturated, bool compressed_saturated, bool offset_saturated,
                 const ZipArchive& archive) {
  Fields fields(extra, 0, archive);
  while (fields.position() + 4 <= extra.size()) {
    const uint64_t id = fields.u16();
    const uint64_t length = fields.u16();
    if (id != 0x0001) {
      fields.skip(length);
      continue;
    }
    const std::string body = fields.text(length);
    Fields values(body, 0, archive);
    if (size_saturated) record.size = values.u64();
    if (compressed_saturated) record.compressed_size = values.u64();
    if (offset_saturated) header_offset = values.u64();
    return;
  }
  if (size_saturated || compressed_saturated || offset_saturated) {
    fail("{}: damaged zip archive: record {} needs a zip64 extra field and has none",
         archive.source(), record.name);
  }
}

}  // namespace

ZipArchive::ZipArchive(const std::filesystem::path& path) : file_(path) { read_directory(); }

void ZipArchive::error(const std::string& message) const {
  fail("{}: {}", file_.name(), message);
}

void ZipArchive::read_directory() {
  const uint64_t size = file_.size();
  if (size < kEndOfDirectoryBytes) error(fmt::format("{} bytes, too short for a zip archive", size));
  // The end record sits in the last 22 bytes plus at most a 65535-byte comment.
  const uint64_t tail_size = std::min<uint64_t>(size, kEndOfDirectoryBytes + 0xffff);
  const std::string tail = file_.read(size - tail_size, static_cast<size_t>(tail_size));
  size_t end = std::string::npos;
  for (size_t i = tail.size() - kEndOfDirectoryBytes + 1; i-- > 0;) {
    if (little_endian(tail.data() + i, 4) == kEndOfDirectory &&
        i + kEndOfDirectoryBytes + little_endian(tail.data() + i + 20, 2) <= tail.size()) {
      end = i;
      break;
    }
  }
  if (end == std::string::npos) error("not a zip archive (no end-of-directory record), or truncated");
  const uint64_t end_offset = size - tail_size + end;
  Fields eocd(tail, end + 4, *this);
  const uint64_t disk = eocd.u16(), directory_disk = eocd.u16();
  eocd.u16();  // entries on this disk
  Directory directory{eocd.u16(), eocd.u32(), eocd.u32()};
  if (disk != 0 || directory_disk != 0) error("a multi-part zip archive, which is not supported");
  if (directory.entries == 0xffff || directory.size == 0xffffffff ||
      directory.offset == 0xffffffff) {
    if (end_offset < 20) error("damaged zip archive: zip64 locator missing");
    const std::string locator_bytes = file_.read(end_offset - 20, 20);
    Fields locator(locator_bytes, 0, *this);
    if (locator.u32() != kZip64Locator) error("damaged zip archive: zip64 locator missing");
    locator.u32();
    const uint64_t record_offset = locator.u64();
    if (record_offset > end_offset || end_offset - record_offset < 56) {
      error("damaged zip archive: zip64 end record out of place");
    }
    const std::string record_bytes = file_.read(record_offset, 56);
    Fields record(record_bytes, 0, *this);
    if (record.u32() != kZip64EndOfDirectory) error("damaged zip archive: zip64 end record missing");
    record.skip(8 + 2 + 2 + 4 + 4 + 8);
    directory = {record.u64(), record.u64(), record.u64()};
  }
  if (directory.offset > end_offset || directory.size > end_offset - directory.offset) {
    error(fmt::format("damaged zip archive: its directory ({} bytes at byte {}) lies outside the "
                      "file of {} bytes", directory.size, directory.offset, size));
  }
  if (directory.entries > directory.size / kDirectoryEntryBytes) {
    error(fmt::format("damaged zip archive: {} entries cannot fit in a directory of {} bytes",
                      directory.entries, directory.size));
  }
  const std::string bytes = file_.read(directory.offset, static_cast<size_t>(directory.size));
  Fields fields(bytes, 0, *this);
  std::vector<std::pair<uint64_t, uint64_t>> spans;  // [local header, end of data) per entry
  for (uint64_t i = 0; i < directory.entries; ++i) {
    if (fields.u32() != kDirectoryEntry) error("damaged zip archive: bad directory entry");
    fields.skip(2 + 2);  // versions
    const uint64_t flags = fields.u16();
    ZipRecord record;
    record.method = static_cast<uint16_t>(fields.u16());
    fields.skip(2 + 2);  // time, date
    record.crc32 = static_cast<uint32_t>(fields.u32());
    record.compressed_size = fields.u32();
    record.size = fields.u32();
    const size_t name_length = fields.u16(), extra_length = fields.u16(), comment_length = fields.u16();
    fields.skip(2 + 2 + 4);  // disk, attributes
    uint64_t header_offset = fields.u32();
    record.name = fields.text(name_length);
    const std::string extra = fields.text(extra_length);
    fields.skip(comment_length);
    apply_zip64(extra, record, header_offset, record.size == 0xffffffff,
                record.compressed_size == 0xffffffff, header_offset == 0xffffffff, *this);
    if (flags & 1) error(fmt::format("record {} is encrypted", record.name));
    if (i == 0) {
      const size_t slash = record.name.find('/');
      prefix_ = slash == std::string::npos ? "" : record.name.substr(0, slash + 1);
    }
    add(std::move(record), header_offset, spans);
  }
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i) {
    if (spans[i].first < spans[i - 1].second) {
      error(fmt::format("damaged or malicious zip archive: records overlap at byte {}",
                        spans[i].first));
    }
  }
  if (!spans.empty() && spans.back().second > directory.offset) {
    error("damaged zip archive: a record runs into the directory");
  }
}

void ZipArchive::add(ZipRecord record, uint64_t header_offset,
                     std::vector<std::pair<uint64_t, uint64_t>>& spans) {
  const std::string& name = record.name;
  if (record.method != 0 && record.method != 8) {
    error(fmt::format("record {} uses compression method {}; only stored and deflated records "
                      "are supported", name, record.method));
  }
  if (record.method == 0 && record.compressed_size != record.size) {
    error(fmt::format("damaged zip archive: stored record {} declares {} bytes but occupies {}",
                      name, record.size, record.compressed_size));
  }
  if (record.method == 8 && record.size / kMaxDeflateRatio > record.compressed_size + 1) {
    error(fmt::format("record {} declares {} bytes from {} compressed bytes, more than deflate can "
                      "produce", name, record.size, record.compressed_size));
  }
  if (header_offset > file_.size() || file_.size() - header_offset < kLocalHeaderBytes) {
    error(fmt::format("damaged zip archive: record {} starts past the end of the file", name));
  }
  const std::string header = file_.read(header_offset, kLocalHeaderBytes);
  Fields local(header, 0, *this);
  if (local.u32() != kLocalHeader) error(fmt::format("damaged zip archive: record {} has no header", name));
  local.skip(22);
  const uint64_t local_name = local.u16(), local_extra = local.u16();
  record.data_offset = header_offset + kLocalHeaderBytes + local_name + local_extra;
  if (record.data_offset > file_.size() ||
      record.compressed_size > file_.size() - record.data_offset) {
    error(fmt::format("truncated: record {} ({} bytes at byte {}) runs past the end of the file "
                      "({} bytes)", name, record.compressed_size, record.data_offset, file_.size()));
  }
  // Two names for one record would let the directory and the headers tell different stories.
  if (local_name != name.size() || file_.read(header_offset + kLocalHeaderBytes, name.size()) != name) {
    error(fmt::format("damaged zip archive: record {} has another name in its local header", name));
  }
  spans.emplace_back(header_offset, record.data_offset + record.compressed_size);
  if (name.compare(0, prefix_.size(), prefix_) != 0) return;  // outside the archive's folder
  std::string key = name.substr(prefix_.size());
  if (records_.count(key)) error(fmt::format("the archive holds record {} twice", name));
  record.name = key;
  records_.emplace(std::move(key), std::move(record));
}

const ZipRecord& ZipArchive::record(const std::string& name) const {
  const auto found = records_.find(name);
  if (found == records_.end()) error(fmt::format("the archive has no record {}", name));
  return found->second;
}

std::vector<std::string> ZipArchive::names() const {
  std::vector<std::string> out;
  for (const auto& [name, record] : records_) out.push_back(name);
  return out;
}

void ZipArchive::read(const std::string& name, void* out, uint64_t size) const {
  const ZipRecord& record = this->record(name);
  if (record.size != size) {
    error(fmt::format("record {} has {} bytes, expected {}", name, record.size, size));
  }
  if (record.method == 0) {
    file_.read_into(record.data_offset, out, static_cast<size_t>(size));
  } else {
    inflate_into(record, out);
  }
#ifdef QIMERA_HAVE_ZLIB
  const uLong crc = size == 0 ? crc32_z(0, Z_NULL, 0)
                              : crc32_z(0, static_cast<const Bytef*>(out), static_cast<size_t>(size));
  if (crc != record.crc32) {
    error(fmt::format("record {} is damaged (CRC-32 {:08x}, the archive says {:08x})", name, crc,
                      record.crc32));
  }
#endif
}

#ifdef QIMERA_HAVE_ZLIB

void ZipArchive::inflate_into(const ZipRecord& record, void* out) const {
  const std::string& name = record.name;
  const uint64_t size = record.size;
  z_stream stream{};
  if (inflateInit2(&stream, -MAX_WBITS) != Z_OK) error("cannot initialise zlib");
  const std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&stream, inflateEnd);
  std::string chunk;
  Bytef unused = 0;  // zlib refuses a null output pointer, even for no output
  Bytef* const target = size == 0 ? &unused : static_cast<Bytef*>(out);
  uint64_t offset = record.data_offset, left = record.compressed_size, produced = 0;
  while (true) {
    if (stream.avail_in == 0 && left > 0) {
      const size_t take = static_cast<size_t>(std::min<uint64_t>(left, 1 << 20));
      chunk = file_.read(offset, take);
      offset += take;
      left -= take;
      stream.next_in = reinterpret_cast<Bytef*>(chunk.data());
      stream.avail_in = static_cast<uInt>(take);
    }
    // zlib counts in 32 bits: hand it the output in pieces. It never writes past avail_out, so a
    // stream that inflates to more than the declared size is caught, not obeyed.
    const uint64_t room = std::min<uint64_t>(size - produced, 1u << 30);
    stream.next_out = target + produced;
    stream.avail_out = static_cast<uInt>(room);
    const int rc = inflate(&stream, Z_NO_FLUSH);
    produced += room - stream.avail_out;
    if (rc == Z_STREAM_END) break;
    if (rc == Z_OK) continue;  // progress was made
    if (rc == Z_BUF_ERROR && produced == size) {
      error(fmt::format("record {} does not end after its declared {} bytes (it inflates to more, "
                        "or is damaged)", name, size));
    }
    if (rc == Z_BUF_ERROR && stream.avail_in == 0 && left == 0) {
      error(fmt::format("record {}: the compressed data ends early", name));
    }
    error(fmt::format("record {}: damaged compressed data ({})", name,
                      stream.msg ? stream.msg : "zlib error"));
  }
  if (produced != size) {
    error(fmt::format("record {} inflates to {} bytes, not its declared {}", name, produced, size));
  }
}

#else

void ZipArchive::inflate_into(const ZipRecord& record, void*) const {
  error(fmt::format("record {} is compressed, and this build has no zlib (torch.save never "
                    "compresses: re-save the file with torch.save)", record.name));
}

#endif

std::string ZipArchive::read_string(const std::string& name, uint64_t max_size) const {
  const uint64_t size = record(name).size;
  if (size > max_size) {
    error(fmt::format("record {} declares {} bytes, more than the {} such a record can need", name,
                      size, max_size));
  }
  std::string bytes(static_cast<size_t>(size), '\0');
  read(name, bytes.data(), size);
  return bytes;
}

}  // namespace qimera::io
