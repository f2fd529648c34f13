#include "binflow/file_checks.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include <fmt/format.h>

#include "binflow/error.hpp"

namespace binflow {

namespace fs = std::filesystem;

namespace {

const char* kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return "a special file";
}

fs::path normalised(const std::string& path) {
  std::error_code ec;
  const fs::path absolute = fs::absolute(fs::path(path), ec).lexically_normal();
  fs::path p = fs::weakly_canonical(absolute, ec);
  if (ec) p = absolute;
  return p;
}

}  // namespace

std::optional<std::string> input_file_problem(const std::string& path, bool directory_allowed,
                                              bool missing_is_problem) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    const int error = errno;
    switch (error) {
      case ENOENT:
        if (!missing_is_problem) return std::nullopt;
        return std::string("does not exist");
      case ENAMETOOLONG:
      case ELOOP:
      case ENOTDIR:
      case EACCES:
        return fmt::format("cannot be reached ({})", std::strerror(error));
      default:
        throw IoError(fmt::format("{}: cannot stat ({})", path, std::strerror(error)));
    }
  }
  if (S_ISREG(info.st_mode)) return std::nullopt;
  if (S_ISDIR(info.st_mode) && directory_allowed) return std::nullopt;
  const char* kind = kind_of(info.st_mode);
  if (directory_allowed) return fmt::format("is {}, not a regular file or a directory", kind);
  return fmt::format("is {}, not a regular file", kind);
}

bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  if (fs::exists(a, ec) && fs::exists(b, ec)) {
    const bool same = fs::equivalent(a, b, ec);
    if (!ec) return same;
  }
  return normalised(a) == normalised(b);
}

}  // namespace binflow
