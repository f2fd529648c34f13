#pragma once
// Event files (SCIENCE.md section 1): the embedded default observation, a serial reader that
// takes a time range out of a large file with a few hyperslab reads, and a collective
// parallel writer.
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "binflow/h5.hpp"
#include "binflow/runtime.hpp"
#include "science/observation.hpp"
#include "science/sorted_column.hpp"

namespace binflow::science {

/// Rows per chunk of the /events datasets (SCIENCE.md: about 64k events, 512 KiB of doubles).
inline constexpr std::int64_t event_chunk_rows = 65536;

/// The embedded default instrument and observation of SCIENCE.md section 4: default_irf(),
/// Crab pointing, deadtime 0.05, mjdref 51544.5, and GTIs made of runs of 1800 s separated by
/// 120 s gaps from `tstart` until `duration_s` seconds of wall-clock time have passed; the
/// last run is cut at tstart + duration_s (and a cut falling in a gap adds no run). So
/// duration 1800 is one run, and the default 14400 s are 7 full runs plus one of 960 s.
/// UsageError unless duration_s > 0 and both are finite.
Observation default_observation(double duration_s, double tstart = 0.0);

/// Read-only, serial access to an event file. Every rank may open the same file on its
/// own. Not thread-safe (HDF5 is not). The constructor validates everything but the event
/// rows themselves, which are checked as they are read.
class EventFileReader {
public:
  /// Opens and validates `path`: the root attributes (format "eventlist", format_version 1,
  /// mjdref, object, ra_pnt, dec_pnt, deadtime_fraction in [0, 1)), /irf (through Response),
  /// /gti (validate_gti), and the four 1-D /events datasets of equal length. UsageError
  /// naming the file and the dataset or attribute for a missing or non-HDF5 file, a missing
  /// or malformed dataset or attribute, a wrong format or version.
  explicit EventFileReader(std::string path);

  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] const Observation& observation() const { return observation_; }
  /// Number of event rows.
  [[nodiscard]] std::int64_t size() const { return rows_; }

  /// Exactly the events with t0 <= time < t1, in file order. The first call reads one
  /// time every 1024 rows (SortedColumnIndex: 8 bytes per 1024 events, kept), which
  /// brackets the range to within 1024 rows at each end; the times of the bracketed rows
  /// are read at once and searched in memory (or, beyond 2^20 rows, each bound is found in
  /// one read of at most 1024 times), and the other columns are read for the range only.
  /// UsageError naming the file, dataset
  /// and row if the times read are not sorted or not finite, or energy/ra/dec not finite.
  /// `before_read`, if set, is called with the row count before the columns are read.
  [[nodiscard]] Events read_time_range(double t0, double t1,
                                       const BeforeRead& before_read = {}) const;
  /// Where view_time_range() puts a range's columns: they grow to the largest range read
  /// and are never zero-filled (the reads overwrite them), so a bin costs no allocation
  /// after the first. One per thread that reads.
  class Buffers {
  public:
    void reserve(std::size_t rows);
    [[nodiscard]] double* column(std::size_t k) const { return columns_[k].get(); }

  private:
    std::array<std::unique_ptr<double[]>, 4> columns_;  // NOLINT(*-avoid-c-arrays)
    std::size_t rows_ = 0;
  };

  /// The same events, checked the same way, in `buffers` (valid until their next use).
  /// Thread-safe: the reader's HDF5 calls are serialised (parallel HDF5 is not built
  /// thread-safe), the checks run outside the lock.
  [[nodiscard]] EventsView view_time_range(double t0, double t1, const BeforeRead& before_read,
                                           Buffers& buffers) const;

  /// The time index (one time per 1024 rows from row 0), read from the file at the first
  /// call or search: UsageError if those times are not finite and ascending.
  [[nodiscard]] const std::vector<double>& time_index_values() const;
  /// Takes the index another reader of this file read (rank 0's, broadcast: one read of the
  /// whole time column per job, not per rank), checked the same way; UsageError if it does
  /// not fit this file's row count.
  void adopt_time_index(std::vector<double> values) const;

  /// Elements of /events/time read so far, probes included (to check that a range read
  /// does not read the file).
  [[nodiscard]] std::int64_t time_rows_read() const { return time_rows_read_; }

private:
  /// First row in [lo, hi) whose time is >= t (hi if none).
  [[nodiscard]] std::int64_t lower_bound(double t, std::int64_t lo, std::int64_t hi) const;
  [[nodiscard]] std::vector<double> read_time(std::int64_t offset, std::int64_t count) const;
  [[nodiscard]] const SortedColumnIndex& time_index() const;
  [[nodiscard]] std::string time_label() const;

  std::string path_;
  h5::Location file_;
  Observation observation_;
  std::int64_t rows_ = 0;
  // Open for the reader's lifetime: reopening a dataset per read (per binary-search probe)
  // cost a chunk read each time (40 h, 1000 bins: 1.2 s -> 0.2 s). Without a chunk cache
  // HDF5 reads just the selected elements; with one, interleaved bins (dynamic or cyclic
  // schedules) grew a rank's memory with every bin (to 600 MiB on a 764 MiB file) instead
  // of following the largest bin (28 MiB).
  h5::DoubleColumn time_;
  h5::DoubleColumn energy_;
  h5::DoubleColumn ra_;
  h5::DoubleColumn dec_;
  mutable SortedColumnIndex time_index_;  // read at the first search
  mutable std::mutex hdf5_;  // held for every HDF5 call of a read
  mutable std::int64_t time_rows_read_ = 0;
};

/// Collective writer of one event file through parallel HDF5 (MPI-IO). The file is written
/// under a temporary name chosen by rank 0 ("<path>.tmp.<pid>") and renamed to `path` by
/// rank 0 after the collective close in commit(), so a failed run leaves nothing under
/// `path`. Every rank makes every call, in the same order. Not thread-safe: call from the
/// thread that calls MPI.
class EventFileWriter {
public:
  /// Collective over comm: creates the temporary file, writes the root attributes, /irf and
  /// /gti, and creates the /events datasets of `total_rows` rows (same on every rank) in
  /// chunks of event_chunk_rows.
  EventFileWriter(std::string path, const Observation& observation, std::int64_t total_rows,
                  const Communicator& comm);
  EventFileWriter(const EventFileWriter&) = delete;
  EventFileWriter& operator=(const EventFileWriter&) = delete;
  /// Without commit(): gives up the file handle without the collective close (a rank may be
  /// unwinding alone; the driver's MPI_Abort then ends the job) and rank 0 removes the
  /// temporary file. Never throws.
  ~EventFileWriter();

  /// Produces the next events of this rank in row order (e.g. one time slice); an empty
  /// result means "no more".
  using Producer = std::function<Events()>;
  /// Collective: this rank's rows are [first_row, first_row + rows); `produce` is called
  /// whenever the write buffer holds fewer rows than the next round needs. Rows go out in
  /// collective rounds of at most 4 chunks per rank (ranks that are done take part with
  /// nothing), so a rank holds one round plus one producer result at a time.
  /// InternalError if `produce` yields more or fewer than `rows` rows.
  void write_rows(std::int64_t first_row, std::int64_t rows, const Producer& produce);

  /// The open file, for extra attributes or groups (same calls on every rank; close
  /// groups before commit()).
  [[nodiscard]] const h5::Location& file() const { return file_; }

  /// Collective: closes the file and renames it to `path` (rank 0); IoError on every rank
  /// if either fails.
  void commit();

private:
  std::string path_;
  std::string temporary_;
  const Communicator& comm_;
  int rank_ = 0;
  h5::Location file_;
  std::int64_t total_rows_ = 0;
  bool committed_ = false;
};

/// Collective over comm: writes `path` with the events of all ranks, each rank holding a
/// contiguous block of rows in rank order (rank 0 first). Events must be sorted by time
/// over the whole file; this is not checked here.
void write_event_file(const std::string& path, const Observation& observation, const Events& local,
                      const Communicator& comm);

}  // namespace binflow::science
