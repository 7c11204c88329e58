// CUDA tests run where a CUDA device exists (the GPU check) and skip elsewhere.
#pragma once

#include <gtest/gtest.h>
#include <torch/cuda.h>

#define QIMERA_REQUIRE_CUDA()                                        \
  do {                                                               \
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device"; \
  } while (false)
