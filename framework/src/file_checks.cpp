#include "binflow/file_checks.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <ctime>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>

#include <fmt/format.h>

#include "binflow/error.hpp"
#include "serialize.hpp"

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

constexpr std::uint64_t mib = std::uint64_t{1} << 20;
constexpr std::uint64_t block = 4096;
constexpr int sampled_blocks = 16;
constexpr std::uint64_t directory_head = std::uint64_t{64} * 1024;
constexpr std::size_t directory_files = 10000;

// FNV-1a over the pieces [offset, offset + length) of `path`, in the order given.
std::uint64_t sampled_checksum(const fs::path& path,
                               const std::vector<std::pair<std::uint64_t, std::uint64_t>>& pieces) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(fmt::format("{}: cannot be read ({})", path.string(), std::strerror(errno)));
  std::string bytes;
  std::string buffer;
  for (const auto& [offset, length] : pieces) {
    buffer.resize(length);
    in.seekg(static_cast<std::streamoff>(offset));
    in.read(buffer.data(), static_cast<std::streamsize>(length));
    if (static_cast<std::uint64_t>(in.gcount()) != length) {
      throw IoError(fmt::format("{}: read failed at byte {}", path.string(), offset));
    }
    bytes += buffer;
  }
  return detail::checksum(bytes);
}

// The pieces of a file of `size` bytes: head, 16 blocks evenly spread, tail (they may overlap).
std::vector<std::pair<std::uint64_t, std::uint64_t>> file_samples(std::uint64_t size) {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> pieces{{0, std::min(size, mib)}};
  if (size > 2 * mib) {
    for (int k = 1; k <= sampled_blocks; ++k) {
      const std::uint64_t at = (size - block) / (sampled_blocks + 1) * static_cast<std::uint64_t>(k);
      pieces.emplace_back(at, block);
    }
  }
  if (size > mib) pieces.emplace_back(size - std::min(size, mib), std::min(size, mib));
  return pieces;
}

// The modification time, UTC to the nanosecond (st_mtim: std::filesystem's clock has no
// portable epoch).
std::string modified(const fs::path& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    throw IoError(fmt::format("{}: cannot stat ({})", path.string(), std::strerror(errno)));
  }
  std::tm utc{};
  gmtime_r(&info.st_mtim.tv_sec, &utc);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z", utc.tm_year + 1900, utc.tm_mon + 1,
                     utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, info.st_mtim.tv_nsec);
}

}  // namespace

std::vector<std::string> input_identity(const std::string& path) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (ec || !fs::exists(status)) return {};
  if (fs::is_regular_file(status)) {
    const std::uint64_t size = fs::file_size(path);
    return {fmt::format("size {} bytes, modified {}, sampled checksum {:016x}", size,
                        modified(path), sampled_checksum(path, file_samples(size)))};
  }
  std::vector<fs::path> files;
  for (const fs::directory_entry& e : fs::recursive_directory_iterator(path)) {
    if (e.is_regular_file()) files.push_back(e.path());
    if (files.size() >= directory_files) break;
  }
  std::sort(files.begin(), files.end());
  std::vector<std::string> lines;
  for (const fs::path& f : files) {
    const std::uint64_t size = fs::file_size(f);
    lines.push_back(fmt::format("{}: size {} bytes, modified {}, head checksum {:016x}",
                                fs::relative(f, path).string(), size, modified(f),
                                sampled_checksum(f, {{0, std::min(size, directory_head)}})));
  }
  return lines;
}

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
