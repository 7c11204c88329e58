// Shared by the libFuzzer targets: fuzz input as a file (the readers take paths), kept in memory.
#pragma once

#include "qimera/core/error.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

namespace qimera::fuzz {

/// The bytes as a regular file without touching the disk: a memfd, named through /proc.
class InputAsFile {
 public:
  InputAsFile(const uint8_t* data, size_t size) {
    fd_ = ::memfd_create("qimera-fuzz", MFD_CLOEXEC);
    if (fd_ < 0) std::abort();
    size_t done = 0;
    while (done < size) {
      const ssize_t n = ::write(fd_, data + done, size - done);
      if (n <= 0) std::abort();
      done += static_cast<size_t>(n);
    }
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  ~InputAsFile() { ::close(fd_); }
  InputAsFile(const InputAsFile&) = delete;
  InputAsFile& operator=(const InputAsFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  std::string path_;
};

/// Runs `body`; a qimera::Error is the expected answer to bad input. Anything else escapes and
/// libFuzzer reports it (an uncaught exception is a finding: the library promises qimera::Error).
template <typename Body>
void expect_clean(Body&& body) {
  try {
    body();
  } catch (const Error&) {
  }
}

}  // namespace qimera::fuzz
