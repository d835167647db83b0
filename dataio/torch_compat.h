// The one place where LibTorch version differences live (Debian's 1.13.1 CPU
// build here; 2.x CUDA wheels on GPU hosts). Include this instead of
// <torch/torch.h>, and before any glog header.
#pragma once

#include <c10/macros/cmake_macros.h>
#include <torch/torch.h>
#include <torch/version.h>

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
#endif
#include <glog/logging.h>

namespace instructflip::compat {

inline constexpr int kTorchMajor = TORCH_VERSION_MAJOR;
inline constexpr int kTorchMinor = TORCH_VERSION_MINOR;

// Pinned host memory only helps (and only works) when a CUDA device exists.
inline bool PinMemoryAvailable() { return torch::cuda::is_available(); }

}  // namespace instructflip::compat
