#include "qimera/core/atomic_file.h"

#include "qimera/core/error.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

namespace qimera {
namespace fs = std::filesystem;

namespace {

// Unique per process and call: concurrent writers of one target never share a temporary file.
fs::path temporary_sibling(const fs::path& folder, const fs::path& name) {
  static std::atomic<uint64_t> counter{0};
  return folder / fmt::format(".{}.tmp-{}-{}", name.string(), ::getpid(), counter++);
}

void fsync_folder(const fs::path& folder) {
  const int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;  // Best effort: some file systems do not allow opening folders.
  ::fsync(fd);
  ::close(fd);
}

// Flushes a file another writer produced; the error names the target.
void fsync_file(const fs::path& path, const std::string& display) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 && errno == ENOENT) fail("writing {} produced no file", display);
  if (fd < 0) fail("cannot write {}: {}", display, std::strerror(errno));
  struct stat st {};
  const bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  const int rc = regular ? ::fsync(fd) : 0;
  const int error = errno;
  ::close(fd);
  if (!regular) fail("cannot write {}: the writer did not produce a regular file", display);
  if (rc != 0) fail("cannot write {}: {}", display, std::strerror(error));
}

struct Destination {
  fs::path folder;
  fs::path tmp;
};

Destination prepare(const fs::path& target) {
  require(target.has_filename(), "cannot write {}: the path names a folder, not a file",
          target.string());
  std::error_code ec;
  if (fs::is_directory(target, ec)) {
    fail("cannot write {}: it is a folder; give a file name (e.g. {})", target.string(),
         (target / "out.json").string());
  }
  const fs::path folder = target.has_parent_path() ? target.parent_path() : fs::path(".");
  fs::create_directories(folder, ec);
  require(!ec, "cannot create folder {} for {}: {}", folder.string(), target.string(), ec.message());
  return {folder, temporary_sibling(folder, target.filename())};
}

void move_into_place(const Destination& where, const fs::path& target) {
  if (::rename(where.tmp.c_str(), target.c_str()) != 0) {
    const int error = errno;
    ::unlink(where.tmp.c_str());
    fail("cannot move the finished file into place at {}: {}", target.string(),
         std::strerror(error));
  }
  fsync_folder(where.folder);
}

}  // namespace

OutputFile::OutputFile(const fs::path& path, std::string display) : display_(std::move(display)) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0666);
  if (fd_ < 0) {
    fail("cannot write {}: cannot create a file in {}: {}", display_, path.parent_path().string(),
         std::strerror(errno));
  }
}

OutputFile::~OutputFile() {
  if (fd_ >= 0) ::close(fd_);
}

void OutputFile::write(const void* data, size_t count) {
  require(fd_ >= 0, "cannot write {}: the file is already closed", display_);
  const auto* cursor = static_cast<const char*>(data);
  while (count > 0) {
    const ssize_t done = ::write(fd_, cursor, count);
    if (done < 0 && errno == EINTR) continue;
    // A short write is followed by another that reports the reason (ENOSPC, EFBIG, EDQUOT, EIO).
    if (done < 0) fail("cannot write {}: {}", display_, std::strerror(errno));
    cursor += done;
    count -= static_cast<size_t>(done);
  }
}

void OutputFile::finish() {
  require(fd_ >= 0, "cannot write {}: the file is already closed", display_);
  const int fd = fd_;
  fd_ = -1;
  const int synced = ::fsync(fd);
  const int sync_error = errno;
  const int closed = ::close(fd);
  const int close_error = errno;
  if (synced != 0) fail("cannot write {}: {}", display_, std::strerror(sync_error));
  if (closed != 0) fail("cannot write {}: {}", display_, std::strerror(close_error));
}

void write_file_atomically(const fs::path& target, const std::function<void(OutputFile&)>& write) {
  const Destination where = prepare(target);
  try {
    OutputFile out(where.tmp, target.string());
    write(out);
    out.finish();
  } catch (const Error&) {
    ::unlink(where.tmp.c_str());
    throw;
  } catch (const std::exception& e) {
    ::unlink(where.tmp.c_str());
    fail("cannot write {}: {}", target.string(), e.what());
  }
  move_into_place(where, target);
}

void write_file_atomically(const fs::path& target, std::string_view bytes) {
  write_file_atomically(target, [&](OutputFile& out) { out.write(bytes); });
}

void write_atomically(const fs::path& target, const std::function<void(const fs::path&)>& write) {
  const Destination where = prepare(target);
  try {
    write(where.tmp);
    fsync_file(where.tmp, target.string());
  } catch (const Error&) {
    ::unlink(where.tmp.c_str());
    throw;
  } catch (const std::exception& e) {
    ::unlink(where.tmp.c_str());
    fail("cannot write {}: {}", target.string(), e.what());
  }
  move_into_place(where, target);
}

}  // namespace qimera
