// libFuzzer target for the safetensors reader: any byte string must either
// parse (and then every tensor must load) or throw instructflip::Error. A
// crash, sanitizer report, abort or any other exception is a finding.
//   clang++ -fsanitize=fuzzer,address ... tests/fuzz/safetensors_fuzz.cc model/safetensors.cc
//   ./safetensors_fuzz tests/fuzz/corpus/safetensors
#include <cstddef>
#include <cstdint>

#include "model/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto file = instructflip::SafetensorsFile::FromBuffer(data, size, "fuzz input");
    for (const auto& info : file->tensors()) file->Get(info.name);
  } catch (const instructflip::Error&) {
    // Rejected input: the expected outcome for most mutants.
  }
  return 0;
}
