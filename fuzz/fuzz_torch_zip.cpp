// torch.save files: the zip reader and, behind it, the pickle subset, on arbitrary bytes.
#include "fuzz_input.h"
#include "qimera/io/state_dict.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const qimera::fuzz::InputAsFile file(data, size);
  qimera::fuzz::expect_clean([&] { qimera::io::read_state_dict(file.path()); });
  return 0;
}
