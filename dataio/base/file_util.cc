#include "dataio/base/file_util.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <vector>

#include "dataio/base/check.h"
#include "dataio/base/crc32c.h"

namespace instructflip {
namespace {

// Closes a descriptor on scope exit so an exception never leaks it.
struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

void FsyncDirectoryOf(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  IF_SYSCALL(fd, "open directory ", dir);
  FdCloser closer{fd};
  IF_SYSCALL(::fsync(fd), "fsync directory ", dir);
}

}  // namespace

std::string ReadFile(const std::string& path) {
  // O_NONBLOCK: opening a FIFO named by mistake (or /dev/stdin) must not wait
  // for a writer; it is refused below with every other non-regular file, whose
  // read would never end (/dev/zero) or never start.
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  IF_SYSCALL(fd, "open ", path);
  FdCloser closer{fd};
  struct stat info;
  IF_SYSCALL(::fstat(fd, &info), "stat ", path);
  IF_REQUIRE(S_ISREG(info.st_mode), path, ": not a regular file (",
             S_ISDIR(info.st_mode) ? "a directory" : "a device, FIFO or socket", ")");
  IF_SYSCALL(::fcntl(fd, F_SETFL, 0), "fcntl ", path);
  std::string out;
  char buffer[1 << 16];
  while (true) {
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    IF_SYSCALL(n, "read ", path);
    if (n == 0) break;
    out.append(buffer, static_cast<size_t>(n));
  }
  return out;
}

void FsyncFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  IF_SYSCALL(fd, "open ", path);
  FdCloser closer{fd};
  IF_SYSCALL(::fsync(fd), "fsync ", path);
}

void RenameDurable(const std::string& from, const std::string& to) {
  IF_SYSCALL(::rename(from.c_str(), to.c_str()), "rename ", from, " -> ", to);
  FsyncDirectoryOf(to);
}

void WriteFileAtomic(const std::string& path, const std::string& contents) {
  const std::string temp = path + ".tmp-" + std::to_string(::getpid());
  {
    int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    IF_SYSCALL(fd, "create ", temp);
    FdCloser closer{fd};
    size_t done = 0;
    while (done < contents.size()) {
      ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
      IF_SYSCALL(n, "write ", temp);
      done += static_cast<size_t>(n);
    }
    IF_SYSCALL(::fsync(fd), "fsync ", temp);
  }
  RenameDurable(temp, path);
}

std::vector<std::string> CreateDirectories(const std::string& dir) {
  std::vector<std::string> made;
  // Walked as written ("a/../b" makes a, then b): "." and ".." make nothing.
  for (std::filesystem::path p = std::filesystem::absolute(dir);
       !p.empty() && !std::filesystem::exists(p) && p != p.parent_path(); p = p.parent_path())
    if (!p.filename().empty() && p.filename() != "." && p.filename() != "..") made.push_back(p.string());
  std::filesystem::create_directories(dir);
  return made;
}

void RemoveEmptyDirectories(const std::vector<std::string>& dirs) {
  std::error_code ignored;
  for (const std::string& dir : dirs)
    if (!std::filesystem::remove(dir, ignored)) break;
}

bool PathExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

int64_t FileSize(const std::string& path) {
  struct stat st;
  IF_SYSCALL(::stat(path.c_str(), &st), "stat ", path);
  return static_cast<int64_t>(st.st_size);
}

uint32_t FileCrc32c(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  IF_SYSCALL(fd, "open ", path);
  FdCloser closer{fd};
  std::vector<char> buffer(1 << 20);
  uint32_t crc = 0;
  while (true) {
    ssize_t n = ::read(fd, buffer.data(), buffer.size());
    IF_SYSCALL(n, "read ", path);
    if (n == 0) break;
    crc = Crc32c(buffer.data(), static_cast<size_t>(n), crc);
  }
  return crc;
}

std::string JoinPath(const std::string& dir, const std::string& name) {
  return (std::filesystem::path(dir) / name).string();
}

bool IsConfinedRelativePath(const std::string& path) {
  if (path.empty() || path.front() == '/' || path.find('\\') != std::string::npos) return false;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    const std::string part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

std::string JoinUnder(const std::string& root, const std::string& relative) {
  IF_REQUIRE(IsConfinedRelativePath(relative), "refusing to write '", relative, "' under '", root,
             "': it would leave that directory");
  return JoinPath(root, relative);
}

FileLock::FileLock(const std::string& path, const std::string& what) {
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  IF_SYSCALL(fd_, "open ", path);
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    std::string holder(256, '\0');
    const ssize_t n = ::pread(fd_, holder.data(), holder.size(), 0);
    holder.resize(n > 0 ? static_cast<size_t>(n) : 0);
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == '\0')) holder.pop_back();
    ::close(fd_);
    IF_FAIL(what, " is in use by another process (", holder.empty() ? "unknown holder" : holder, "; ", path,
            " is locked)");
  }
  char host[256] = "?";
  ::gethostname(host, sizeof(host) - 1);
  const std::string holder = "pid " + std::to_string(::getpid()) + " on host " + host + "\n";
  // Best effort: the lock is the flock; the text only names who holds it.
  if (::ftruncate(fd_, 0) == 0 && ::pwrite(fd_, holder.data(), holder.size(), 0) < 0) {
  }
}

FileLock::~FileLock() { ::close(fd_); }

}  // namespace instructflip
