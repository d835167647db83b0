#include "dist/file_rendezvous.h"

#include <thread>

#include "dataio/base/check.h"
#include "dataio/base/crc32c.h"
#include "dataio/base/file_util.h"

namespace instructflip {
namespace {

constexpr char kMagic[] = "instructflip-rendezvous v1";

std::string RendezvousPath(const std::string& dir, const std::string& key) {
  IF_REQUIRE(!key.empty() && key.find('/') == std::string::npos && key.find('\n') == std::string::npos,
             "rendezvous key '", key, "' must be a non-empty single-line file name part");
  return JoinPath(dir, "rendezvous-" + key);
}

}  // namespace

std::string PublishRendezvous(const std::string& dir, const std::string& key, const std::string& blob) {
  const std::string path = RendezvousPath(dir, key);
  // magic \n key \n size crc \n blob
  WriteFileAtomic(path, std::string(kMagic) + "\n" + key + "\n" + std::to_string(blob.size()) + " " +
                            std::to_string(Crc32c(blob.data(), blob.size())) + "\n" + blob);
  return path;
}

std::string AwaitRendezvous(const std::string& dir, const std::string& key, std::chrono::milliseconds timeout) {
  const std::string path = RendezvousPath(dir, key);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!PathExists(path)) {
    IF_REQUIRE(std::chrono::steady_clock::now() < deadline, "rendezvous: ", path, " did not appear within ",
               std::chrono::duration<double>(timeout).count(), " s (rank 0 of launch '", key,
               "' has not published; is the directory shared by every node?)");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const std::string text = ReadFile(path);
  const size_t magic_end = text.find('\n');
  const size_t key_end = magic_end == std::string::npos ? magic_end : text.find('\n', magic_end + 1);
  const size_t header_end = key_end == std::string::npos ? key_end : text.find('\n', key_end + 1);
  IF_REQUIRE(header_end != std::string::npos && text.compare(0, magic_end, kMagic) == 0, path,
             ": not a rendezvous file");
  IF_REQUIRE(text.substr(magic_end + 1, key_end - magic_end - 1) == key, path, ": written for another launch");
  size_t size = 0;
  uint32_t crc = 0;
  try {
    const std::string sizes = text.substr(key_end + 1, header_end - key_end - 1);
    size_t used = 0;
    size = std::stoul(sizes, &used);
    crc = static_cast<uint32_t>(std::stoul(sizes.substr(used)));
  } catch (const std::logic_error&) {
    IF_FAIL(path, ": malformed size/checksum line");
  }
  const std::string blob = text.substr(header_end + 1);
  IF_REQUIRE(blob.size() == size && Crc32c(blob.data(), blob.size()) == crc, path, ": blob of ", blob.size(),
             " bytes does not match its header (", size, " bytes, CRC32C ", crc, ")");
  return blob;
}

}  // namespace instructflip
