// CIFAR-10 and CIFAR-100 binary batch files on arbitrary bytes.
#include "fuzz_input.h"
#include "qimera/data/cifar.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const qimera::fuzz::InputAsFile file(data, size);
  qimera::fuzz::expect_clean([&] { qimera::data::open_cifar10(file.path(), "test"); });
  qimera::fuzz::expect_clean([&] { qimera::data::open_cifar100(file.path(), "test"); });
  return 0;
}
