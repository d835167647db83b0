// The one place where LibTorch version differences live (Debian's 1.13.1 CPU
// build here; 2.x CUDA wheels on GPU hosts). Include this instead of
// <torch/torch.h>, and before any glog header.
#pragma once

#include <c10/macros/cmake_macros.h>

#include <optional>

#include <ATen/autocast_mode.h>
#include <torch/torch.h>
#include <torch/version.h>
#if INSTRUCTFLIP_WITH_CUDA  // set by CMake when LibTorch has CUDA (libc10_cuda)
// Every CUDA header the project uses, here: their inline code must be parsed
// before c10's logging macros are dropped below.
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif
#include <c10/core/impl/DeviceGuardImplInterface.h>

#if !defined(C10_USE_GLOG)
// Wheels built without glog define c10's own LOG/CHECK family, which clash
// with glog's. Torch's headers are already expanded above, so drop c10's
// macros and let glog's be the only ones in this translation unit.
#undef LOG
#undef LOG_IF
#undef VLOG
#undef VLOG_IS_ON
#undef CHECK
#undef CHECK_EQ
#undef CHECK_NE
#undef CHECK_LT
#undef CHECK_LE
#undef CHECK_GT
#undef CHECK_GE
#undef CHECK_NOTNULL
#undef DCHECK
#undef DCHECK_EQ
#undef DCHECK_NE
#undef DCHECK_LT
#undef DCHECK_LE
#undef DCHECK_GT
#undef DCHECK_GE
#undef LOG_EVERY_N
#undef LOG_AT_FILE_LINE
#undef CHECK_OP
#undef DLOG
#undef VLOG_IF
#undef FATAL_IF
#endif
#include <glog/logging.h>

#define INSTRUCTFLIP_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace instructflip::compat {

// Pinned host memory only helps (and only works) when a CUDA device exists.
inline bool PinMemoryAvailable() { return torch::cuda::is_available(); }

// softmax(q k^T / sqrt(d) + mask) v with the fused kernels (flash / memory-
// efficient) of LibTorch >= 2.0; nullopt on 1.13, where the caller runs the plain
// formula. q: (B, H, Lq, D), k/v: (B, H, Lk, D), mask additive, broadcastable.
inline std::optional<torch::Tensor> FusedAttention(const torch::Tensor& q, const torch::Tensor& k,
                                                   const torch::Tensor& v, const torch::Tensor& mask) {
#if INSTRUCTFLIP_TORCH_AT_LEAST(2, 0)
  return mask.defined() ? at::scaled_dot_product_attention(q, k, v, mask) : at::scaled_dot_product_attention(q, k, v);
#else
  (void)q, (void)k, (void)v, (void)mask;
  return std::nullopt;
#endif
}

// Name of CUDA device `index` (for benchmark reports).
inline std::string CudaDeviceName(int index) {
#if INSTRUCTFLIP_WITH_CUDA
  return at::cuda::getDeviceProperties(index)->name;
#else
  (void)index;
  return "cuda";
#endif
}

// Makes `device` the thread's current device, so that tensors created without
// an explicit index, and libraries that use the current device (NCCL), land on
// this rank's GPU. No-op for CPU.
inline void SetCurrentDevice(const torch::Device& device) {
  if (device.is_cuda()) c10::impl::getDeviceGuardImpl(device.type())->setDevice(device);
}

// Whether autocast to `dtype` exists on that device type (LibTorch 1.13's CPU
// autocast knows only bf16; fp16 on CPU arrived in 2.x).
inline bool AutocastSupported(const torch::Device& device, torch::ScalarType dtype) {
  if (device.is_cuda() || dtype == torch::kBFloat16) return true;
  return dtype == torch::kFloat16 && INSTRUCTFLIP_TORCH_AT_LEAST(2, 3);
}

// Autocast to `dtype` (bf16/fp16) on `device` for the guard's lifetime, like
// `with torch.autocast(...)`: matmuls and convolutions run in the low
// precision, reductions/softmax/losses stay fp32 per ATen's op lists.
class AutocastGuard {
 public:
  AutocastGuard(const torch::Device& device, torch::ScalarType dtype) : cuda_(device.is_cuda()) {
#if INSTRUCTFLIP_TORCH_AT_LEAST(2, 4)
    const auto type = cuda_ ? at::kCUDA : at::kCPU;
    previous_enabled_ = at::autocast::is_autocast_enabled(type);
    previous_dtype_ = at::autocast::get_autocast_dtype(type);
    at::autocast::set_autocast_dtype(type, dtype);
    at::autocast::set_autocast_enabled(type, true);
#else
    previous_enabled_ = cuda_ ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
    previous_dtype_ = cuda_ ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
    if (cuda_) {
      at::autocast::set_autocast_gpu_dtype(dtype);
      at::autocast::set_enabled(true);
    } else {
      at::autocast::set_autocast_cpu_dtype(dtype);
      at::autocast::set_cpu_enabled(true);
    }
#endif
    at::autocast::increment_nesting();
  }
  ~AutocastGuard() {
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
#if INSTRUCTFLIP_TORCH_AT_LEAST(2, 4)
    const auto type = cuda_ ? at::kCUDA : at::kCPU;
    at::autocast::set_autocast_enabled(type, previous_enabled_);
    at::autocast::set_autocast_dtype(type, previous_dtype_);
#else
    if (cuda_) {
      at::autocast::set_enabled(previous_enabled_);
      at::autocast::set_autocast_gpu_dtype(previous_dtype_);
    } else {
      at::autocast::set_cpu_enabled(previous_enabled_);
      at::autocast::set_autocast_cpu_dtype(previous_dtype_);
    }
#endif
  }
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool cuda_;
  bool previous_enabled_ = false;
  torch::ScalarType previous_dtype_ = torch::kFloat32;
};

}  // namespace instructflip::compat
