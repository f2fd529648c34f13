#pragma once
// The accounting of a run: per bin (rank, timing, threads, memory), per rank (busy, idle,
// bins) and the wall time, with the figures the run report derives from them. One type for
// the executor (which measures), the checkpoint (which stores bins), the driver (which
// writes /run and the summary line) and tools that run several maps (which add them up).
#include <cstdint>
#include <vector>

#include "binflow/table.hpp"

namespace binflow {

/// Per-bin accounting, stored in /run/bins.
struct BinStats {
  std::int64_t index = 0;
  int rank = 0;
  double start = 0.0;  ///< s since the start of the map on the bin's rank
  double end = 0.0;
  double wall = 0.0;  ///< s
  double cpu = 0.0;   ///< process CPU s since the previous bin on this thread ended (its
                      ///< OpenMP threads and the executor's work between the bins included)
  int threads = 1;    ///< thread budget the bin ran with
  std::int64_t peak_rss_kib = 0;  ///< process peak resident set after the bin
  bool resumed = false;           ///< taken from the checkpoint, not run now
};

/// Per-rank accounting, stored in /run/ranks.
struct RankStats {
  int rank = 0;
  double busy = 0.0;  ///< s spent inside bins
  double idle = 0.0;  ///< s of the map's wall time not spent inside bins
  std::int64_t bins = 0;
  std::int64_t peak_rss_kib = 0;  ///< the process's peak resident set at the end of the map
};

/// The statistics of one map, or of a run made of several. Filled on rank 0.
struct RunStats {
  std::vector<BinStats> bins;    ///< in bin order
  std::vector<RankStats> ranks;  ///< one per rank of the run
  double wall = 0.0;             ///< s

  /// sum(busy) / (ranks * wall): 1 is perfect, 0 without ranks or wall.
  [[nodiscard]] double efficiency() const;
  /// max(busy) / mean(busy) - 1: 0 is perfect.
  [[nodiscard]] double imbalance() const;
  /// busy / wall of one rank.
  [[nodiscard]] double efficiency_of(const RankStats& rank) const;
  /// The per-bin and per-rank records as the tables stored in /run/bins and /run/ranks.
  [[nodiscard]] Table bins_table() const;
  [[nodiscard]] Table ranks_table() const;
  /// Adds the wall time and the per-rank totals (busy, idle, bins; the larger peak memory)
  /// of another map that ran on the same ranks after this one; its per-bin records stay its
  /// own (they are keyed by that map's bin indices).
  void merge_totals(const RunStats& other);
};

}  // namespace binflow
