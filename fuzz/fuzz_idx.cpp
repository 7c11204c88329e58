// IDX image and label files on arbitrary bytes.
#include "fuzz_input.h"
#include "qimera/data/idx.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const qimera::fuzz::InputAsFile file(data, size);
  qimera::fuzz::expect_clean([&] { qimera::data::read_idx_images(file.path()); });
  qimera::fuzz::expect_clean([&] { qimera::data::read_idx_labels(file.path()); });
  return 0;
}
