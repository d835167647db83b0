#include "launch/version.h"

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "dataio/base/check.h"
#include "launch/git_revision.h"  // generated at build time: INSTRUCTFLIP_GIT_REVISION
#include "trainer/run_files.h"

namespace instructflip::launch {

std::string VersionString() {
  return std::string(INSTRUCTFLIP_VERSION) + " (git " + INSTRUCTFLIP_GIT_REVISION + ")";
}

void RecordVersion(const std::string& dir, const std::string& what) {
  std::filesystem::create_directories(dir);
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm utc{};
  gmtime_r(&now, &utc);
  char when[32];
  std::strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &utc);
  const std::string path = VersionLog(dir);
  std::ofstream out(path, std::ios::app);
  out << "instructflip " << VersionString() << " at " << when << ": " << what << "\n";
  out.flush();
  IF_REQUIRE(out.good(), "cannot append to '", path, "'");
}

}  // namespace instructflip::launch
