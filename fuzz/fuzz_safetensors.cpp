// The safetensors reader (weights, exports and checkpoints) on arbitrary bytes.
#include "fuzz_input.h"
#include "qimera/io/safetensors.h"

#include <map>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const qimera::fuzz::InputAsFile file(data, size);
  qimera::fuzz::expect_clean([&] {
    std::map<std::string, std::string> metadata;
    qimera::io::read_safetensors(file.path(), &metadata);
  });
  return 0;
}
