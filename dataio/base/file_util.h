// Small POSIX file helpers with durable (fsync'ed) atomic replacement. Every
// write that a later reader must see whole goes through WriteFileAtomic or a
// temp-file + FsyncFile + RenameDurable sequence.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace instructflip {

// The whole contents of a regular file; a directory, device, FIFO or socket is
// an error naming `path` (reading /dev/zero or a FIFO would never end).
std::string ReadFile(const std::string& path);
// Writes `path.tmp-<pid>`, fsyncs it, renames over `path`, fsyncs the directory.
void WriteFileAtomic(const std::string& path, const std::string& contents);
void FsyncFile(const std::string& path);
// rename(2) then fsync of the destination directory.
void RenameDurable(const std::string& from, const std::string& to);
bool PathExists(const std::string& path);
int64_t FileSize(const std::string& path);
// CRC32C of a whole file, streamed.
uint32_t FileCrc32c(const std::string& path);
std::string JoinPath(const std::string& dir, const std::string& name);
// True if `relative` names something inside a directory: not absolute, no
// backslash, and no empty, '.' or '..' component.
bool IsConfinedRelativePath(const std::string& relative);
// root/relative for a `relative` built from outside data (a domain name, a
// shard path): an Error naming both if it would leave root. Every output path
// with such a part goes through here.
std::string JoinUnder(const std::string& root, const std::string& relative);

// Creates `dir` and its missing parents; returns the ones it made, deepest
// first, so that a writer refused later can take back exactly those.
std::vector<std::string> CreateDirectories(const std::string& dir);
// Removes each of `dirs` in order while it is empty; stops at the first that is
// not (written to, or someone else's by now).
void RemoveEmptyDirectories(const std::vector<std::string>& dirs);

// An exclusive, non-blocking flock(2) held for the object's lifetime. The file
// names its holder ("pid P on host H"); if another process holds it, throws
// instructflip::Error naming `what` and that holder. The kernel releases it when
// the holder dies (kill -9 included), so a stale file never blocks.
class FileLock {
 public:
  FileLock(const std::string& path, const std::string& what);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace instructflip
