#include "qimera/core/atomic_file.h"

#include "qimera/core/error.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <atomic>
#include <sstream>

namespace qimera {
namespace fs = std::filesystem;

namespace {

void fsync_path(const fs::path& path, bool directory) {
  int fd = ::open(path.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) return;  // Best effort: some file systems do not allow opening folders.
  ::fsync(fd);
  ::close(fd);
}

// Unique per process and call: concurrent writers of one target never share a temporary file.
fs::path temporary_sibling(const fs::path& target) {
  static std::atomic<uint64_t> counter{0};
  return target.parent_path() /
         fmt::format(".{}.tmp-{}-{}", target.filename().string(), ::getpid(), counter++);
}

}  // namespace

void write_atomically(const fs::path& target, const std::function<void(const fs::path&)>& write) {
  const fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::error_code ec;
  fs::create_directories(parent, ec);
  require(!ec, "cannot create folder {}: {}", parent.string(), ec.message());
  const fs::path tmp = temporary_sibling(parent / target.filename());
  try {
    write(tmp);
  } catch (...) {
    fs::remove(tmp, ec);
    throw;
  }
  require(fs::exists(tmp), "writing {} produced no file", target.string());
  fsync_path(tmp, false);
  fs::rename(tmp, target, ec);
  if (ec) {
    fs::remove(tmp, ec);
    fail("cannot move the finished file into place at {}: {}", target.string(), ec.message());
  }
  fsync_path(parent, true);
}

void write_file_atomically(const fs::path& target, std::string_view bytes) {
  write_atomically(target, [&](const fs::path& tmp) {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    require(out.good(), "cannot open {} for writing: {}", tmp.string(), std::strerror(errno));
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    require(out.good(), "cannot write {}: {}", target.string(), std::strerror(errno));
  });
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  require(in.good(), "cannot open {}: {}", path.string(),
          fs::exists(path) ? std::strerror(errno) : "no such file");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  require(!in.bad(), "cannot read {}", path.string());
  return std::move(buffer).str();
}

}  // namespace qimera
