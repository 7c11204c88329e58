#include "qimera/core/json_file.h"

#include "qimera/core/atomic_file.h"
#include "qimera/core/error.h"
#include "qimera/core/json_value.h"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace qimera {
namespace fs = std::filesystem;

namespace {
// The Fashion-MNIST class files, the largest JSON read here, have 30 MB.
constexpr uint64_t kMaxJsonBytes = uint64_t{1} << 30;
}  // namespace

nlohmann::json read_json(const fs::path& path) {
  return parse_json(read_file(path, kMaxJsonBytes), path.string());
}

void write_json(const fs::path& path, const nlohmann::json& value) {
  write_file_atomically(path, value.dump(2) + "\n");
}

void append_json_line(const fs::path& path, const nlohmann::json& value) {
  std::error_code ec;
  if (path.has_parent_path()) fs::create_directories(path.parent_path(), ec);
  const std::string line = value.dump() + '\n';
  // O_NOFOLLOW: a link planted in a run folder must not redirect the run's writes elsewhere.
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW |
                                          O_NONBLOCK, 0666);
  if (fd < 0 && errno == ELOOP) {
    fail("cannot append to {}: it is a symbolic link; remove it (this program only appends to "
         "files it created)", path.string());
  }
  if (fd < 0) fail("cannot open {} for appending: {}", path.string(), std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail("cannot append to {}: {}", path.string(), "not a regular file");
  }
  const ssize_t written = ::write(fd, line.data(), line.size());
  const int error = errno;
  const bool partial = written >= 0 && static_cast<size_t>(written) != line.size();
  // Take a partial line back, so that the file stays valid JSON lines.
  if (partial && ::ftruncate(fd, st.st_size) != 0) {
  }
  const int closed = ::close(fd);
  if (written < 0) fail("cannot append to {}: {}", path.string(), std::strerror(error));
  if (partial) {
    fail("cannot append to {}: only {} of {} bytes were written (disk full?)", path.string(),
         written, line.size());
  }
  if (closed != 0) fail("cannot append to {}: {}", path.string(), std::strerror(errno));
}

}  // namespace qimera
