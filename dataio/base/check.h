// Error channels (STYLE habit 5/6).
//
// * IF_CHECK(cond) << "...": a broken invariant inside the program: glog CHECK
//   semantics, aborts with file and line.
// * IF_REQUIRE(cond, msg): bad input or a failed I/O call: throws
//   instructflip::Error carrying the message and, apart, the file:line of the
//   check, so the CLI can print one clear line ("store/manifest.json: field
//   'shards[2].path' ...") and exit non-zero without a crash or a partial write;
//   the source line is for developers (`--verbose`), not part of the message.
// * IF_SYSCALL(expr, what): a POSIX call returning -1 on failure; throws with errno.
#pragma once

#include <cerrno>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <string>

#include <glog/logging.h>

namespace instructflip {

// Recoverable error for bad input and I/O. `what()` is the user-facing message;
// `where()` the source line that raised it ("" if none).
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message, std::string where = "")
      : std::runtime_error(message), where_(std::move(where)) {}
  const std::string& where() const { return where_; }

 private:
  std::string where_;
};

namespace detail {
[[noreturn]] inline void ThrowError(const char* file, int line, const std::string& message) {
  throw Error(message, std::string(file) + ":" + std::to_string(line));
}

// Concatenates the streamable arguments into one string.
template <typename... Args>
std::string StrCat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}
}  // namespace detail

}  // namespace instructflip

#define IF_REQUIRE(cond, ...)                                                          \
  do {                                                                                 \
    if (!(cond))                                                                       \
      ::instructflip::detail::ThrowError(__FILE__, __LINE__,                           \
                                         ::instructflip::detail::StrCat(__VA_ARGS__)); \
  } while (0)

#define IF_FAIL(...) \
  ::instructflip::detail::ThrowError(__FILE__, __LINE__, ::instructflip::detail::StrCat(__VA_ARGS__))

#define IF_SYSCALL(expr, ...)                                                                   \
  do {                                                                                          \
    if ((expr) < 0) {                                                                           \
      const int saved_errno = errno;                                                            \
      ::instructflip::detail::ThrowError(                                                       \
          __FILE__, __LINE__,                                                                   \
          ::instructflip::detail::StrCat(__VA_ARGS__, ": ", std::strerror(saved_errno)));       \
    }                                                                                           \
  } while (0)

// Invariants: glog's CHECK (c10's CHECK is glog's on Debian; see torch_compat.h).
#define IF_CHECK(cond) CHECK(cond)
