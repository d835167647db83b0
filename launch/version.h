// Which build of instructflip this is: the project version and the git revision
// of the sources it was built from, taken at build time (launch/git_revision.cmake;
// "-dirty" when they had uncommitted changes, "unknown" outside a git checkout).
#pragma once

#include <string>

namespace instructflip::launch {

std::string VersionString();  // "0.5.0 (git 1a2b3c4d5e6f)"

// Appends "instructflip VERSION at UTC-TIME: WHAT" to DIR/versions.txt
// (trainer/run_files.h: VersionLog), creating DIR if needed.
void RecordVersion(const std::string& dir, const std::string& what);

}  // namespace instructflip::launch
