// Shared main for every test program: quiet progress bars, a fixed thread count and seed so results
// do not depend on the machine's core count.
#include "qimera/core/progress.h"
#include "qimera/core/runtime.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  qimera::tune_allocator();
  qimera::configure_threads(2);
  qimera::ProgressBar::set_enabled(false);
  spdlog::set_level(spdlog::level::warn);
  return RUN_ALL_TESTS();
}
