// CRC32C (Castagnoli), the checksum of every JPEG blob and shard in the store.
// Written here because no Debian 12 package exposes it to C++ (Abseil 20220623
// predates absl/crc; google/crc32c is not packaged). Uses SSE4.2's crc32
// instruction when the CPU has it, a slicing table otherwise; both give the
// same values (tested against the RFC 3720 check value).
#pragma once

#include <cstddef>
#include <cstdint>

namespace instructflip {

// Extends `crc` (0 to start) with `size` bytes.
uint32_t Crc32c(const void* data, size_t size, uint32_t crc = 0);

// Portable table version (exposed for tests).
uint32_t Crc32cPortable(const void* data, size_t size, uint32_t crc = 0);

}  // namespace instructflip
