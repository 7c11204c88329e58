// Process-wide runtime settings: which device to run on, how many CPU threads, allocator tuning and
// seeding. The device is always chosen at run time; nothing in the library hard-codes CPU or CUDA.
#pragma once

#include <c10/core/Device.h>

#include <cstdint>
#include <string>

namespace qimera {

/// Parses "auto" (CUDA when available, else CPU), "cpu", "cuda" or "cuda:N".
/// Example: auto device = resolve_device("auto");
c10::Device resolve_device(const std::string& spec);

/// Sets LibTorch's intra-op thread count (it defaults to 1 on Debian's build); threads <= 0 means
/// one per available core. Returns the count in effect.
int configure_threads(int threads);

/// Keeps glibc from returning large blocks to the OS after every training step (4x the page faults
/// and ~15% slower steps otherwise; see docs). Call once at the start of main().
void tune_allocator();

/// Seeds LibTorch's generators on every device.
void seed_everything(uint64_t seed);

/// A one-line description of the build and runtime (LibTorch version, device, threads, BLAS).
std::string describe_runtime(const c10::Device& device);

}  // namespace qimera
