// What the fuzz targets share: a scratch directory of the process (for parsers
// that read files) and the finding of a broken invariant.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

namespace instructflip::fuzz {

// A directory private to this fuzzing process, in /dev/shm when there is one
// (files written per input stay in memory), removed at exit.
inline const std::string& ScratchDir() {
  static const std::string dir = [] {
    const char* base = std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp";
    std::string path = std::string(base) + "/instructflip-fuzz-" + std::to_string(::getpid());
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
    static const std::string removed_at_exit = path;
    std::atexit([] { std::filesystem::remove_all(removed_at_exit); });
    return path;
  }();
  return dir;
}

// Writes `bytes` to ScratchDir()/name and returns the path.
inline std::string WriteScratch(const std::string& name, const std::string& bytes) {
  const std::string path = ScratchDir() + "/" + name;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  return path;
}

// Seeds a target makes itself (an encoded JPEG, a trained tokenizer model):
// with INSTRUCTFLIP_FUZZ_WRITE_SEEDS=DIR set, LLVMFuzzerInitialize writes them
// to DIR/NAME-<i> and the process exits (tests/fuzz/make_corpus.sh).
inline void WriteSeedsIfAsked(const char* name, const std::function<std::vector<std::string>()>& make) {
  const char* dir = std::getenv("INSTRUCTFLIP_FUZZ_WRITE_SEEDS");
  if (dir == nullptr) return;
  const std::vector<std::string> seeds = make();
  for (size_t i = 0; i < seeds.size(); ++i)
    std::ofstream(std::string(dir) + "/" + name + "-" + std::to_string(i), std::ios::binary) << seeds[i];
  std::exit(0);
}

// A parser accepted an input but broke one of its own promises: a finding.
[[noreturn]] inline void Broken(const char* what) {
  std::fprintf(stderr, "fuzz: invariant broken: %s\n", what);
  std::abort();
}

}  // namespace instructflip::fuzz
