#pragma once
// What rank 0 knows of a top-level run while it goes on: bins done, failed and resumed, the
// ranks still working, elapsed time and ETA, and every completed bin's accounting. The
// executor's collector updates it on rank 0 between messages (one short lock per completed
// bin); the progress line and the live dashboard read snapshots of it from their own threads,
// so neither ever sits on the compute path.
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "binflow/run_stats.hpp"

namespace binflow {

/// One completed bin as the monitor keeps it: its accounting with start and end moved to
/// seconds since the run started (rank 0's clock), and its status.
struct MonitoredBin {
  BinStats stats;
  std::string map;     ///< the map the bin belongs to
  std::string status;  ///< bin_status::ok, failed, or a tool's own (e.g. empty)
};

/// Where a run is, at one instant.
struct RunSnapshot {
  std::string map;                ///< the current (or last) map's name; empty before the first
  std::int64_t total = 0;         ///< bins of the current map's plan
  std::int64_t done = 0;          ///< of those, completed (resumed ones included)
  std::int64_t failed = 0;        ///< of the done ones, failed
  std::int64_t resumed = 0;       ///< of the done ones, taken from the checkpoint
  int ranks = 1;                  ///< ranks of the run
  int ranks_working = 0;          ///< ranks that have not yet finished the current map's work
  double elapsed = 0.0;           ///< s since the run started
  double eta = -1.0;              ///< s until the current map ends at the rate so far; < 0: unknown
  bool finished = false;          ///< the run has ended (results written or not)
  std::uint64_t version = 0;      ///< grows with every change (pages poll for a newer one)
  std::size_t bins_recorded = 0;  ///< completed bins recorded over the whole run
};

/// Thread-safe. Updated by rank 0's collector (map_started, bin_completed, rank_finished,
/// map_finished) and by the driver (run_finished); read by any thread.
class RunMonitor {
public:
  RunMonitor();

  /// From now on keeps every completed bin for bins_since() (the dashboard's timeline); off
  /// by default: ~150 bytes a bin on rank 0 that only the dashboard needs.
  void record_bins();

  /// A map of `total` bins begins on `ranks` ranks, `resumed` of them already done.
  void map_started(std::string_view name, std::int64_t total, std::int64_t resumed, int ranks);
  /// A bin of the current map completed; `stats.start/end` are seconds since the map started
  /// on the bin's rank.
  void bin_completed(const BinStats& stats, std::string_view status);
  /// A rank has finished its share of the current map.
  void rank_finished();
  void map_finished();
  void run_finished();

  [[nodiscard]] RunSnapshot snapshot() const;
  /// Completed bins `first`, `first + 1`, ... of the whole run (in completion order), if
  /// record_bins() was called before they completed.
  [[nodiscard]] std::vector<MonitoredBin> bins_since(std::size_t first) const;

private:
  [[nodiscard]] double seconds_since_start() const;

  mutable std::mutex mutex_;
  double start_;      // the run's start, steady clock s
  double map_start_;  // the current map's start, s since the run's start
  RunSnapshot now_;
  std::int64_t done_now_ = 0;  // bins of this map completed in this run (not resumed)
  bool record_bins_ = false;
  std::vector<MonitoredBin> bins_;
};

}  // namespace binflow
