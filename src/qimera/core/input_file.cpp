#include "qimera/core/input_file.h"

#include "qimera/core/error.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace qimera {
namespace fs = std::filesystem;

namespace {

const char* kind_of(mode_t mode) {
  if (S_ISREG(mode)) return "a regular file";
  if (S_ISDIR(mode)) return "a folder";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

}  // namespace

std::string file_kind(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "missing";
  return kind_of(st.st_mode);
}

InputFile::InputFile(const fs::path& path) : name_(path.string()) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, forever.
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd_ < 0) {
    const int error = errno;
    fail("cannot open {}: {}", name_, error == ENOENT ? "no such file" : std::strerror(error));
  }
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const int error = errno;
    ::close(fd_);
    fail("cannot read {}: {}", name_, std::strerror(error));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd_);
    fail("{} is {}, not a regular file: give a file's path", name_, kind_of(st.st_mode));
  }
  size_ = static_cast<uint64_t>(st.st_size);
}

InputFile::~InputFile() {
  if (fd_ >= 0) ::close(fd_);
}

void InputFile::read_into(uint64_t offset, void* out, size_t count) const {
  if (offset > size_ || count > size_ - offset) {
    fail("{}: truncated: {} bytes needed at byte {}, but the file has {}", name_, count, offset,
         size_);
  }
  auto* cursor = static_cast<char*>(out);
  while (count > 0) {
    const ssize_t got = ::pread(fd_, cursor, count, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) fail("cannot read {}: {}", name_, std::strerror(errno));
    if (got == 0) fail("{}: the file shrank while being read (truncated at byte {})", name_, offset);
    cursor += got;
    offset += static_cast<uint64_t>(got);
    count -= static_cast<size_t>(got);
  }
}

std::string InputFile::read(uint64_t offset, size_t count) const {
  std::string bytes(count, '\0');
  read_into(offset, bytes.data(), count);
  return bytes;
}

std::string read_file(const fs::path& path, uint64_t max_bytes) {
  const InputFile in(path);
  require(in.size() <= max_bytes, "{}: {} bytes, more than the {} this reader accepts", in.name(),
          in.size(), max_bytes);
  return in.read(0, static_cast<size_t>(in.size()));
}

}  // namespace qimera
