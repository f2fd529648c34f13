#pragma once
// The input of a fitting tool (lightcurve, fit, spectrum, phasecurve): an HDF5 event file
// (SCIENCE.md section 1) or a GADF DL3 data set of one or more observations (section 7),
// behind one interface, so that a tool neither knows nor cares which it reads.
//
// What differs between the two is here and nowhere else: the time axis (MJDREF and TIMESYS),
// the GTIs (a DL3 data set's are the union of its observations'), the default source
// position (the HDF5 file's pointing; the DL3 observations' common RA_OBJ/DEC_OBJ), the
// fitter (one Gaussian-PSF response, or one ObservationResponse per observation) and the read
// of a bin's region of interest (from the observations the bin overlaps, one RoiEvents part
// each, so the fit weights each observation's response by its livetime in the bin).
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <spdlog/logger.h>

#include "binflow/runtime.hpp"
#include "science/dl3.hpp"
#include "science/event_file.hpp"
#include "science/likelihood.hpp"
#include "science/response.hpp"
#include "tools/analysis.hpp"

namespace binflow::apps {

class AnalysisInput {
public:
  /// Collective over `comm`: rank 0 opens `params.inobs`, checks the time range, the source
  /// position and runs `check_more` on the input (the tool's binning, say), so that bad input
  /// ends every rank with one line before any work is spread; then every rank opens it.
  AnalysisInput(const Communicator& comm, const AnalysisParameters& params,
                const std::function<void(const AnalysisInput&)>& check_more = {});
  /// Serial: opens and checks `params.inobs` on this process only.
  explicit AnalysisInput(const AnalysisParameters& params);
  AnalysisInput(const AnalysisInput&) = delete;
  AnalysisInput& operator=(const AnalysisInput&) = delete;
  ~AnalysisInput();

  [[nodiscard]] bool is_dl3() const { return data_ != nullptr; }
  /// The DL3 data set, or nullptr for an HDF5 event file.
  [[nodiscard]] const science::dl3::DataSet* data_set() const { return data_.get(); }
  /// The good time intervals on the input's time axis (sorted, disjoint).
  [[nodiscard]] const science::Gti& gti() const { return gti_; }
  /// The selection [tmin, tmax), s on the time axis.
  [[nodiscard]] double t0() const { return range_.first; }
  [[nodiscard]] double t1() const { return range_.second; }
  /// MJD (in timesys()) of `seconds` on the time axis.
  [[nodiscard]] double mjd(double seconds) const;
  [[nodiscard]] double mjdref() const { return mjdref_; }
  [[nodiscard]] const std::string& timesys() const { return timesys_; }
  /// The fit settings of the analysis parameters, the source position defaulting to the
  /// input's (see the file comment).
  [[nodiscard]] const science::FitSettings& settings() const { return settings_; }
  /// A fitter for `settings` (the input's responses at settings.ra, settings.dec).
  [[nodiscard]] science::BinFitter fitter(const science::FitSettings& settings) const;
  /// The events of [t0, t1) in the region of interest of `settings` and their livetime,
  /// read one GTI piece of at most `window` seconds at a time (memory follows the selection,
  /// not the input); `keep(time)`, when given, drops events before the selection (phase
  /// bins). For DL3, one part per observation overlapping [t0, t1), in the data set's order.
  /// Each piece's events and their selection are checked against `memory` before they are
  /// read (MemoryLimitExceeded fails the bin). Not thread-safe (HDF5 and cfitsio handles):
  /// call it from the bin's thread.
  [[nodiscard]] science::RoiEvents read_roi(double t0, double t1,
                                            const science::FitSettings& settings,
                                            const MemoryLimit& memory,
                                            const std::function<bool(double)>& keep = {},
                                            double window = 3600.0) const;
  /// Livetime of [t0, t1), s (summed over the observations).
  [[nodiscard]] double livetime(double t0, double t1) const;
  /// Event rows of the whole input.
  [[nodiscard]] std::int64_t n_events() const;
  /// Whether read_roi() may run for several bins at once (MapOptions::concurrent_bins): an
  /// HDF5 event file, whose reader serialises its HDF5 calls; not DL3 input, whose readers
  /// (cfitsio, and the cache of open ones) are not shared between threads.
  [[nodiscard]] bool reads_concurrently() const { return !data_; }
  /// One line for the run log: what was opened (kind, observations, events, GTIs) and the
  /// selection; then the DL3 reader's notes, one line each.
  void log_summary(spdlog::logger& log) const;

private:
  struct CachedReader;
  void open();
  science::dl3::EventReader& dl3_reader(std::size_t observation) const;
  [[nodiscard]] science::RoiEvents read_pieces(
      const science::Gti& gti, double deadtime_fraction, double t0, double t1,
      const science::FitSettings& settings, const MemoryLimit& memory,
      const std::function<bool(double)>& keep, double window,
      const std::function<science::EventsView(double, double, const science::BeforeRead&)>& read)
      const;

  struct EventFile;  // an HDF5 event file and its response

  const AnalysisParameters& params_;
  // Exactly one of the two kinds is set.
  std::unique_ptr<const EventFile> event_file_;
  std::unique_ptr<const science::dl3::DataSet> data_;
  // Open DL3 event readers, most recently used last (a compressed file is held in memory
  // while open, so only a few stay open).
  mutable std::vector<std::unique_ptr<CachedReader>> readers_;

  science::Gti gti_;
  double mjdref_ = 0.0;
  std::string timesys_;
  std::pair<double, double> range_;
  science::FitSettings settings_;
};

}  // namespace binflow::apps
