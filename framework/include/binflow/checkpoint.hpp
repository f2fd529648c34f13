#pragma once
// The checkpoint journal of a run: completed bins appended as they arrive on rank 0,
// read back by --resume. An append-only file of length-prefixed, checksummed records,
// so a kill -9 at any moment loses at most the records not yet flushed and never
// corrupts the ones before (a torn tail is cut off on resume).
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "binflow/run_stats.hpp"
#include "binflow/table.hpp"

namespace binflow {

/// One completed bin as stored in the journal.
struct CompletedBin {
  std::string map;  ///< name of the map it belongs to
  std::int64_t position = 0;
  std::string status;
  std::string message;
  Row row;          ///< the tool's columns only
  std::string log;  ///< the bin's log block, replayed on resume
  BinStats stats;
  bool bad_input = false;  ///< failed with a UsageError: the input is wrong, not the bin
};

/// The first line where two fingerprints differ, as "<holder> has '...', this run '...'":
/// why a checkpoint (or a complete output) does not belong to this run.
[[nodiscard]] std::string fingerprint_difference(std::string_view stored, std::string_view wanted,
                                                 std::string_view holder);

/// Rank 0 only: the proof that this run alone works on `<outfile>.ckpt`, held for the
/// run's life. A kernel lock (an open-file-description lock, `F_OFD_SETLK`, which NFS
/// forwards to its lock manager) on the checkpoint file, so it dies with its process: a
/// run killed by -9 never blocks the resume. Taken before the checkpoint is looked at:
/// the file is created empty if missing (O_CREAT, so two runs starting at the same
/// instant open the same file and the kernel lets one win). An empty file is no journal
/// (a run that was starting); the lock removes it when released. Not thread-safe.
class CheckpointLock {
public:
  /// Locks `path`, creating it empty if it is missing. UsageError naming the run in
  /// progress (pid and host when the file system keeps them) if another process holds
  /// it; IoError if the file cannot be created. A file system without locks (Lustre
  /// mounted without `flock`) gives a warning on stderr and no lock.
  [[nodiscard]] static CheckpointLock acquire(const std::string& path, std::string_view outfile);
  CheckpointLock(CheckpointLock&& other) noexcept;
  CheckpointLock& operator=(CheckpointLock&&) = delete;
  CheckpointLock(const CheckpointLock&) = delete;
  CheckpointLock& operator=(const CheckpointLock&) = delete;
  /// Removes the file if it is still the empty one (no journal written), then unlocks.
  ~CheckpointLock();

private:
  CheckpointLock(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::string path_;
  int fd_ = -1;
};

/// Whether `path` holds a journal: it exists and is not empty (an empty file is the one a
/// starting run's CheckpointLock created).
[[nodiscard]] bool journal_exists(const std::string& path);

/// Rank 0 only. Not thread-safe.
class Checkpoint {
public:
  /// The journal at `path`. With `resume`, existing records whose header matches
  /// `fingerprint` are loaded (UsageError if it was written by a different tool or
  /// parameters). Nothing is written, truncated or replaced until open() (or the first
  /// write), so a run refused on bad input leaves an old journal as it was.
  Checkpoint(std::string path, std::string fingerprint, bool resume);
  Checkpoint(const Checkpoint&) = delete;
  Checkpoint& operator=(const Checkpoint&) = delete;
  ~Checkpoint();

  /// Completed bins of map `name` loaded at open (successful ones only: failed bins
  /// are run again on resume).
  [[nodiscard]] std::vector<CompletedBin> completed(std::string_view name) const;
  [[nodiscard]] std::size_t loaded() const { return loaded_.size(); }
  /// Why the loaded journal ends before the file does, if a record failed its checksum (a
  /// damaged file, not the cut tail a kill leaves); empty otherwise.
  [[nodiscard]] const std::string& damage() const { return damage_; }

  /// Opens the file for this run: keeps the loaded records (resume) or replaces the old
  /// journal. Called when the tool's input checks have passed; idempotent.
  void open();
  void append(const CompletedBin& bin);
  /// Writes buffered records to the file when 256 are pending or 0.25 s have passed
  /// since the last write, and syncs to disk every 5 s. Cheap when nothing is due.
  void flush_if_due();
  /// Writes everything now and syncs to disk.
  void flush();
  /// Deletes the journal (the final output is in place); nothing if this run never opened it.
  void remove();
  [[nodiscard]] const std::string& path() const { return path_; }

private:
  void open_for_append(std::int64_t keep_bytes);
  void write_pending(bool sync);
  /// IoError for a failed `what` (write, sync); removes a journal that holds no bin first.
  [[noreturn]] void fail(const char* what);
  std::string path_;
  std::string fingerprint_;
  std::FILE* file_ = nullptr;
  std::int64_t keep_bytes_ = 0;  // what open() keeps of the old file (the loaded records)
  bool opened_ = false;
  std::vector<CompletedBin> loaded_;
  std::string damage_;
  bool holds_bins_ = false;  // a record of this run reached the file
  std::string pending_;
  std::size_t pending_records_ = 0;
  std::chrono::steady_clock::time_point last_write_;
  std::chrono::steady_clock::time_point last_sync_;
};

}  // namespace binflow
