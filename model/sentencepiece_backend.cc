#include "model/sentencepiece_backend.h"

#include <dlfcn.h>
#include <unistd.h>

#include <filesystem>
#include <mutex>

#include "dataio/base/check.h"

namespace instructflip {
namespace {

using Factory = SentencePieceBackend* (*)();

// Candidates: the build tree's plugin, then beside the running executable and
// in ../lib (an installed layout).
std::vector<std::string> PluginCandidates() {
  std::vector<std::string> out = {INSTRUCTFLIP_SENTENCEPIECE_PLUGIN};
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  const std::string name = std::filesystem::path(INSTRUCTFLIP_SENTENCEPIECE_PLUGIN).filename().string();
  if (!ec) {
    out.push_back((exe.parent_path() / name).string());
    out.push_back((exe.parent_path().parent_path() / "lib" / name).string());
  }
  return out;
}

Factory LoadFactory() {
  static std::once_flag once;
  static Factory factory = nullptr;
  static std::string failures;
  std::call_once(once, [] {
    for (const std::string& path : PluginCandidates()) {
      void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
      if (handle == nullptr) {
        failures += "\n  " + path + ": " + ::dlerror();
        continue;
      }
      factory = reinterpret_cast<Factory>(::dlsym(handle, "instructflip_create_sentencepiece_backend"));
      if (factory != nullptr) return;
      failures += "\n  " + path + ": no instructflip_create_sentencepiece_backend";
    }
  });
  IF_REQUIRE(factory != nullptr, "cannot load the sentencepiece plugin; tried:", failures);
  return factory;
}

}  // namespace

std::unique_ptr<SentencePieceBackend> CreateSentencePieceBackend() {
  return std::unique_ptr<SentencePieceBackend>(LoadFactory()());
}

}  // namespace instructflip
