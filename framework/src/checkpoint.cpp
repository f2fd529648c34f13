#include "binflow/checkpoint.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <ctime>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "binflow/error.hpp"
#include "serialize.hpp"

namespace binflow {

namespace {

constexpr std::string_view magic = "binflow-checkpoint 1\n";
constexpr std::size_t flush_records = 256;
constexpr auto flush_interval = std::chrono::milliseconds(250);
constexpr auto sync_interval = std::chrono::seconds(5);

std::string read_whole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw IoError(fmt::format("{}: cannot read the checkpoint ({})", path, std::strerror(errno)));
  std::ostringstream text;
  text << in.rdbuf();
  return std::move(text).str();
}

// Who holds a checkpoint's lock, for the message of a second run: an OFD lock has no owner
// pid (F_OFD_GETLK reports -1, and a lock held on another node has none here), so the holder
// writes it as an extended attribute of the file. Best effort: a file system without user
// attributes gives a message without it.
constexpr const char* holder_attribute = "user.binflow.run";

std::string holder_text() {
  std::array<char, 256> host{};
  if (gethostname(host.data(), host.size() - 1) != 0) host[0] = '\0';
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("pid {} on host {}, started {:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", getpid(),
                     host.data(), tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec);
}

std::string read_holder(int fd) {
  std::array<char, 512> text{};
  const ssize_t n = fgetxattr(fd, holder_attribute, text.data(), text.size() - 1);
  return n > 0 ? std::string(text.data(), static_cast<std::size_t>(n)) : std::string();
}

// 0 when locked, EAGAIN when another process holds the lock, another errno when the file
// system has no locks.
int try_lock(int fd) {
  struct flock lock {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  if (fcntl(fd, F_OFD_SETLK, &lock) == 0) return 0;
  if (errno == EAGAIN || errno == EACCES) return EAGAIN;
  if (errno != EINVAL) return errno;
  // A kernel before 3.15 has no OFD locks; flock is per open file description too.
  if (flock(fd, LOCK_EX | LOCK_NB) == 0) return 0;
  return errno == EWOULDBLOCK ? EAGAIN : errno;
}

bool same_inode(int fd, const std::string& path, bool* empty = nullptr) {
  struct stat mine {};
  struct stat named {};
  if (fstat(fd, &mine) != 0 || stat(path.c_str(), &named) != 0) return false;
  if (empty != nullptr) *empty = mine.st_size == 0;
  return mine.st_dev == named.st_dev && mine.st_ino == named.st_ino;
}

}  // namespace

bool journal_exists(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && (st.st_size > 0 || !S_ISREG(st.st_mode));
}

CheckpointLock CheckpointLock::acquire(const std::string& path, std::string_view outfile) {
  struct stat st {};
  if (stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    throw UsageError(fmt::format("outfile: the checkpoint {} is not a regular file", path));
  }
  // The holder before us may remove the file (its run completed) between our open and our
  // lock: then we locked a file nobody else will open, so open the name again.
  for (int attempt = 0; attempt < 100; ++attempt) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) {
      throw IoError(
          fmt::format("{}: cannot create the checkpoint ({})", path, std::strerror(errno)));
    }
    const int error = try_lock(fd);
    if (error == EAGAIN) {
      const std::string holder = read_holder(fd);
      ::close(fd);
      throw UsageError(fmt::format(
          "outfile: another run is in progress on {} ({}{}holds the lock of {}): wait for it to "
          "end, or choose another outfile",
          outfile, holder, holder.empty() ? "" : ", ", path));
    }
    if (error != 0) {
      std::fprintf(stderr,
                   "binflow: warning: %s: cannot lock the checkpoint (%s); a second run started "
                   "on this outfile would not be refused\n",
                   path.c_str(), std::strerror(error));
      return CheckpointLock(path, fd);
    }
    if (same_inode(fd, path)) {
      const std::string holder = holder_text();
      (void)fsetxattr(fd, holder_attribute, holder.data(), holder.size(), 0);
      return CheckpointLock(path, fd);
    }
    ::close(fd);
  }
  throw IoError(fmt::format("{}: cannot lock the checkpoint (it is removed and created again "
                            "without end)",
                            path));
}

CheckpointLock::CheckpointLock(CheckpointLock&& other) noexcept
    : path_(std::move(other.path_)), fd_(other.fd_) {
  other.fd_ = -1;
}

CheckpointLock::~CheckpointLock() {
  if (fd_ < 0) return;
  bool empty = false;
  if (same_inode(fd_, path_, &empty)) {
    // Unlinked while locked, so a run waiting for the name opens a new file (acquire).
    if (empty) {
      ::unlink(path_.c_str());
    } else {
      (void)fremovexattr(fd_, holder_attribute);
    }
  }
  ::close(fd_);
}

std::string fingerprint_difference(std::string_view stored, std::string_view wanted,
                                   std::string_view holder) {
  std::istringstream a{std::string(stored)};
  std::istringstream b{std::string(wanted)};
  std::string la;
  std::string lb;
  while (true) {
    const bool ga = static_cast<bool>(std::getline(a, la));
    const bool gb = static_cast<bool>(std::getline(b, lb));
    if (!ga && !gb) return "?";
    if (la != lb || ga != gb) return fmt::format("{} has '{}', this run '{}'", holder, la, lb);
  }
}


Checkpoint::Checkpoint(std::string path, std::string fingerprint, bool resume)
    : path_(std::move(path)), fingerprint_(std::move(fingerprint)) {
  std::int64_t keep = 0;
  if (resume && journal_exists(path_)) {
    const std::string bytes = read_whole(path_);
    detail::ByteReader header(bytes);
    std::string stored;
    bool header_ok = bytes.compare(0, magic.size(), magic) == 0;
    if (header_ok) {
      detail::ByteReader r(std::string_view(bytes).substr(magic.size()));
      try {
        stored = r.get_string();
      } catch (const IoError&) {
        header_ok = false;
      }
    }
    if (!header_ok) {
      throw UsageError(fmt::format(
          "{}: not a binflow checkpoint (clobber=yes replaces it, without resume=yes)", path_));
    }
    if (stored != fingerprint_) {
      throw UsageError(
          fmt::format("{}: checkpoint was written by a different configuration ({}); "
                      "rerun without --resume or restore the parameters",
                      path_, fingerprint_difference(stored, fingerprint_, "checkpoint")));
    }
    std::size_t offset = magic.size() + sizeof(std::uint64_t) + stored.size();
    keep = static_cast<std::int64_t>(offset);
    // A record cut by kill -9, or one whose checksum fails, ends the usable journal. A cut
    // tail is what a kill leaves; a failed checksum is damage, worth a warning.
    while (bytes.size() - offset >= 2 * sizeof(std::uint64_t)) {
      std::uint64_t length = 0;
      std::uint64_t sum = 0;
      std::memcpy(&length, bytes.data() + offset, sizeof length);
      std::memcpy(&sum, bytes.data() + offset + sizeof length, sizeof sum);
      const std::size_t body = offset + 2 * sizeof(std::uint64_t);
      if (length > bytes.size() - body) break;
      const std::string_view payload(bytes.data() + body, length);
      if (detail::checksum(payload) != sum) {
        damage_ = fmt::format(
            "{}: the record at byte {} of {} fails its checksum (a damaged file): the {} bins "
            "before it are kept, those after it are computed again",
            path_, offset, bytes.size(), loaded_.size());
        break;
      }
      detail::ByteReader r(payload);
      loaded_.push_back(detail::get_completed(r));
      offset = body + length;
      keep = static_cast<std::int64_t>(offset);
    }
  }
  keep_bytes_ = keep;
}

void Checkpoint::open() {
  if (opened_) return;
  opened_ = true;  // first: open_for_append writes the header through write_pending()
  open_for_append(keep_bytes_);
}

Checkpoint::~Checkpoint() {
  // Removed, or never used (then an old journal stays as it was).
  if (file_ == nullptr && (opened_ || pending_.empty())) return;
  try {
    flush();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "binflow: warning: %s\n", e.what());
  }
  if (file_ != nullptr) std::fclose(file_);
}

void Checkpoint::open_for_append(std::int64_t keep_bytes) {
  if (keep_bytes > 0) {
    std::error_code ec;
    std::filesystem::resize_file(path_, static_cast<std::uintmax_t>(keep_bytes), ec);
    if (ec)
      throw IoError(fmt::format("{}: cannot truncate the checkpoint ({})", path_, ec.message()));
    file_ = std::fopen(path_.c_str(), "ab");
  } else {
    file_ = std::fopen(path_.c_str(), "wb");
  }
  if (file_ == nullptr) {
    throw IoError(fmt::format("{}: cannot open the checkpoint ({})", path_, std::strerror(errno)));
  }
  if (keep_bytes == 0) {
    std::string header(magic);
    detail::ByteWriter w(header);
    w.put_string(fingerprint_);
    pending_ = std::move(header) + pending_;  // before records appended earlier
    flush();
  }
  last_write_ = last_sync_ = std::chrono::steady_clock::now();
}

std::vector<CompletedBin> Checkpoint::completed(std::string_view name) const {
  std::vector<CompletedBin> out;
  for (const auto& bin : loaded_) {
    if (bin.map == name && bin.status != "failed") out.push_back(bin);
  }
  return out;
}

void Checkpoint::append(const CompletedBin& bin) {
  std::string payload;
  detail::ByteWriter pw(payload);
  detail::put_completed(pw, bin);
  detail::ByteWriter w(pending_);
  w.put<std::uint64_t>(payload.size());
  w.put<std::uint64_t>(detail::checksum(payload));
  pending_ += payload;
  ++pending_records_;
}

void Checkpoint::flush_if_due() {
  const auto now = std::chrono::steady_clock::now();
  if (pending_records_ < flush_records && now - last_write_ < flush_interval) return;
  write_pending(now - last_sync_ >= sync_interval);
}

void Checkpoint::flush() { write_pending(true); }

void Checkpoint::write_pending(bool sync) {
  open();
  if (file_ == nullptr) return;  // removed: the run's output is in place
  const auto now = std::chrono::steady_clock::now();
  if (!pending_.empty()) {
    if (std::fwrite(pending_.data(), 1, pending_.size(), file_) != pending_.size() ||
        std::fflush(file_) != 0) {
      fail("write");
    }
    holds_bins_ = holds_bins_ || pending_records_ > 0;
    pending_.clear();
    pending_records_ = 0;
  }
  pending_records_ = 0;
  last_write_ = now;
  // fflush already survives a killed process; fdatasync is for a crashed node and costs
  // milliseconds, so it is rarer.
  if (sync) {
    if (fdatasync(fileno(file_)) != 0 && errno != EINVAL) fail("sync");
    last_sync_ = now;
  }
}

void Checkpoint::fail(const char* what) {
  const std::string reason = std::strerror(errno);
  // A journal that holds no bin (a fresh run's header, say) is of no use to a resume and
  // would block the corrected rerun: a run that did no work leaves nothing.
  if (!holds_bins_ && loaded_.empty()) {
    std::fclose(file_);
    file_ = nullptr;
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }
  throw IoError(fmt::format("{}: cannot {} the checkpoint ({})", path_, what, reason));
}

void Checkpoint::remove() {
  // A journal this run never opened is not this run's: leave it (bad input found before
  // the bins must not cost the checkpoint of an earlier interrupted run).
  if (!opened_) return;
  if (file_ != nullptr) {
    std::fclose(file_);
    file_ = nullptr;
  }
  std::error_code ec;
  std::filesystem::remove(path_, ec);
}

}  // namespace binflow
