// The pickle interpreter alone, fed opcode streams directly (the zip container's CRC would make a
// fuzzer spend most of its time on checksums). Storage records "data/0".."data/3" exist with a few
// bytes each; any other record is missing.
#include "fuzz_input.h"
#include "qimera/io/unpickler.h"

#include <cstring>
#include <map>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::map<std::string, std::string> records = {
      {"data/0", std::string(16, '\x01')},
      {"data/1", std::string(24, '\x3f')},
      {"data/2", std::string(4, '\0')},
      {"data/3", std::string("\x01\x00\x01\x01", 4)}};
  const auto record = [](const std::string& name) -> const std::string& {
    const auto found = records.find(name);
    if (found == records.end()) qimera::fail("no record {}", name);
    return found->second;
  };
  const qimera::io::detail::RecordSource source{
      [&](const std::string& name) -> uint64_t { return record(name).size(); },
      [&](const std::string& name, void* out, uint64_t n) { std::memcpy(out, record(name).data(), n); }};
  const std::string_view pickle(reinterpret_cast<const char*>(data), size);
  qimera::fuzz::expect_clean([&] { qimera::io::detail::unpickle_state_dict(pickle, source, "fuzz.pt"); });
  return 0;
}
