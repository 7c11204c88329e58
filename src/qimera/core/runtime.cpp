#include "qimera/core/runtime.h"

#include "qimera/core/error.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/version.h>
#include <torch/utils.h>

#include <malloc.h>

#include <thread>

namespace qimera {

c10::Device resolve_device(const std::string& spec) {
  if (spec == "auto") {
    return torch::cuda::is_available() ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
  }
  if (spec == "cpu") return c10::Device(c10::kCPU);
  if (spec.rfind("cuda", 0) == 0) {
    require(torch::cuda::is_available(),
            "--device {}: this LibTorch build or machine has no CUDA device; use --device cpu or auto",
            spec);
    c10::Device device(c10::kCPU);
    try {
      device = c10::Device(spec);
    } catch (const std::exception&) {
      fail("--device {}: expected auto, cpu, cuda or cuda:N", spec);
    }
    require(device.index() < static_cast<int>(torch::cuda::device_count()),
            "--device {}: only {} CUDA device(s) present", spec, torch::cuda::device_count());
    return device;
  }
  fail("--device {}: expected auto, cpu, cuda or cuda:N", spec);
}

int configure_threads(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(threads);
  return at::get_num_threads();
}

void tune_allocator() {
  ::mallopt(M_MMAP_THRESHOLD, 32 << 20);
  ::mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

void seed_everything(uint64_t seed) { torch::manual_seed(seed); }

std::string describe_runtime(const c10::Device& device) {
  return fmt::format("LibTorch {}, device {}, {} CPU thread(s)", TORCH_VERSION, device.str(),
                     at::get_num_threads());
}

}  // namespace qimera
