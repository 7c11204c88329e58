#include "qimera/core/json_file.h"

#include "qimera/core/atomic_file.h"
#include "qimera/core/error.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace qimera {

nlohmann::json read_json(const std::filesystem::path& path) {
  const std::string text = read_file(path);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    fail("{}: not valid JSON ({})", path.string(), e.what());
  }
}

void write_json(const std::filesystem::path& path, const nlohmann::json& value) {
  write_file_atomically(path, value.dump(2) + "\n");
}

void append_json_line(const std::filesystem::path& path, const nlohmann::json& value) {
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::app);
  require(out.good(), "cannot open {} for appending: {}", path.string(), std::strerror(errno));
  out << value.dump() << '\n';
  out.flush();
  require(out.good(), "cannot append to {}", path.string());
}

}  // namespace qimera
