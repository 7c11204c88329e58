// The JPEG and PNG decoders (libjpeg-turbo, libpng and the checks around them) on arbitrary bytes.
// The pixel limit is lowered so that each input decodes quickly.
#include "fuzz_input.h"
#include "qimera/data/image_codec.h"

#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  qimera::fuzz::expect_clean([&] { qimera::data::decode_image(bytes, "fuzz", int64_t{1} << 20); });
  return 0;
}
