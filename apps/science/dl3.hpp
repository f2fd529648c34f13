#pragma once
// GADF DL3 input (SCIENCE.md section 7): what kind of input `inobs` names, the data set of
// one or more observations (an index directory, one file or a list of files), and the events
// of an observation in a time interval, read by binary search on TIME.
//
// Everything here is serial and independent of MPI: every rank may open the same data set
// on its own. A DataSet is immutable after open() and may be shared by threads; an
// EventReader holds an open cfitsio file and is for one thread.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "science/dl3_irf.hpp"
#include "science/fits.hpp"
#include "science/observation.hpp"

namespace binflow::science::dl3 {

/// What `inobs` names, from its content (not its name).
enum class InputKind {
  event_file,  ///< an HDF5 event file (SCIENCE.md section 1)
  dl3_file,    ///< one DL3 FITS file (EVENTS, GTI and the response HDUs)
  dl3_index,   ///< a directory with hdu-index.fits[.gz] and obs-index.fits[.gz]
  dl3_list,    ///< a text file listing DL3 files
};
[[nodiscard]] std::string_view to_string(InputKind kind);

/// The kind of `inobs`: a directory holding both index files is an index; a file starting
/// with the HDF5 signature (at byte 0, 512, 1024, ...) an event file; one starting with a FITS
/// primary header or the gzip magic a DL3 file; a text file (no NUL byte, at least one line
/// that is not blank or a '#' comment) a list. UsageError naming the path and why for anything
/// else: missing, unreadable, empty, a directory without the index files, binary content.
[[nodiscard]] InputKind input_kind(const std::string& inobs);

/// The time axis of a data set: seconds since the first observation's MJDREF, in its TIMESYS.
struct TimeReference {
  std::int64_t mjdref_int = 0;  ///< MJDREFI (or the integer part of MJDREF)
  double mjdref_frac = 0.0;     ///< MJDREFF
  std::string timesys;          ///< TT, UTC, TAI, ... as written
  std::string timeref;          ///< LOCAL (the FITS default), GEOCENTER, SOLARSYSTEM, ...
  /// MJD (in timesys) of `seconds` on the axis.
  [[nodiscard]] double mjd(double seconds) const;
  /// Seconds on the axis of an MJD in timesys.
  [[nodiscard]] double seconds(double mjd) const;
};

/// Where one HDU is: "file[HDU]".
struct HduLocation {
  std::string file;
  std::string hdu;  ///< EXTNAME
  [[nodiscard]] std::string text() const { return file + "[" + hdu + "]"; }
};

/// One observation (run): its header facts, GTIs and response, read once; its events stay in
/// the file (EventReader).
struct Observation {
  std::int64_t obs_id = 0;
  std::string object;     ///< OBJECT, "" if absent
  double ra_pnt = 0.0;    ///< deg (RA_PNT of EVENTS)
  double dec_pnt = 0.0;   ///< deg
  /// RA_OBJ and DEC_OBJ of EVENTS (deg), when both are there and valid.
  std::optional<std::array<double, 2>> target;
  double ontime = 0.0;    ///< s (ONTIME)
  double livetime = 0.0;  ///< s (LIVETIME, or ONTIME * DEADC)
  /// Axis time = TIME (converted to s) + time_shift: the difference of this observation's
  /// MJDREF and the data set's, in s.
  double time_shift = 0.0;
  Gti gti;  ///< on the data set's axis
  HduLocation events;
  std::int64_t n_events = 0;
  IrfClass psf_class = IrfClass::psf_3gauss;
  IrfClass bkg_class = IrfClass::bkg_2d;
  IrfSet irf;
  /// The energy dispersion HDU, when there is one: noted, not applied (SCIENCE.md 7).
  std::optional<HduLocation> edisp;

  /// LIVETIME / ONTIME, in (0, 1].
  [[nodiscard]] double livetime_fraction() const { return livetime / ontime; }
  /// 1 - LIVETIME / ONTIME: what select_roi() and the livetime of science/gti.hpp take.
  [[nodiscard]] double deadtime_fraction() const { return 1.0 - livetime / ontime; }
  /// First GTI start and last GTI stop on the axis.
  [[nodiscard]] double tstart() const { return gti.start.front(); }
  [[nodiscard]] double tstop() const { return gti.stop.back(); }
};

/// The observations of a DL3 input. Serial, not collective; immutable after open().
class DataSet {
public:
  /// Opens `inobs` (kind dl3_file, dl3_index or dl3_list; an event file is a UsageError
  /// saying to use the event-file reader) and reads every selected observation's EVENTS
  /// header, GTI and response HDUs, checking them (bad input is a UsageError of one line
  /// naming file[HDU] and the column or keyword). `obs_ids` selects observations by OBS_ID
  /// in the given order (empty: all, in the order of the index or list); an id that is not
  /// there is bad input. Observations keep the order of the input; the time axis is that of
  /// the first. A response HDU named by several observations is read once and shared.
  static DataSet open(const std::string& inobs, const std::vector<std::int64_t>& obs_ids = {});

  [[nodiscard]] const std::string& inobs() const { return inobs_; }
  [[nodiscard]] InputKind kind() const { return kind_; }
  [[nodiscard]] const TimeReference& time_reference() const { return time_; }
  [[nodiscard]] const std::vector<Observation>& observations() const { return observations_; }
  [[nodiscard]] std::size_t size() const { return observations_.size(); }
  /// Facts a tool should log once (e.g. an energy dispersion that is not applied, a
  /// FOVALIGN assumed), one line each.
  [[nodiscard]] const std::vector<std::string>& notes() const { return notes_; }
  /// Indices of the observations whose GTI span [tstart, tstop) overlaps [t0, t1), in the
  /// data set's order: the ones a time bin reads.
  [[nodiscard]] std::vector<std::size_t> overlapping(double t0, double t1) const;
  /// Total number of event rows of all observations.
  [[nodiscard]] std::int64_t n_events() const;

private:
  DataSet() = default;
  std::string inobs_;
  InputKind kind_ = InputKind::dl3_file;
  TimeReference time_;
  std::vector<Observation> observations_;
  std::vector<std::string> notes_;
};

/// The events of one observation, read by row ranges. Holds its EVENTS HDU open. Not
/// thread-safe (one cfitsio handle).
class EventReader {
public:
  /// Opens the observation's EVENTS HDU and checks its TIME, RA, DEC, ENERGY columns (numeric,
  /// one value per row, units of time, angle, angle, energy).
  explicit EventReader(const Observation& observation);

  /// Exactly the events with t0 <= time < t1 (on the data set's axis), in file order, times
  /// on the axis, energies in TeV, directions in deg. A binary search on TIME probes single
  /// rows until the bracket is small, then the four columns of the range are read. The rows
  /// read are checked (TIME finite and sorted, ENERGY finite and > 0, RA finite, DEC finite and
  /// within [-90, 90]): UsageError "file[EVENTS] TIME: is not sorted (row 1042 < row 1041)".
  /// `before_read`, if set, is called with the row count before the columns are read.
  [[nodiscard]] Events read_time_range(double t0, double t1, const BeforeRead& before_read = {});
  /// All events of the observation.
  [[nodiscard]] Events read_all();

  /// Rows of TIME read so far, binary-search probes included.
  [[nodiscard]] std::int64_t time_rows_read() const { return time_rows_read_; }
  /// Rows of the other three columns read so far.
  [[nodiscard]] std::int64_t rows_read() const { return rows_read_; }

private:
  [[nodiscard]] Events read_rows(std::int64_t first, std::int64_t count);
  [[nodiscard]] std::vector<double> read_time(std::int64_t first, std::int64_t count);
  [[nodiscard]] std::int64_t lower_bound(double t, std::int64_t lo, std::int64_t hi);

  fits::File file_;
  std::string where_;
  std::int64_t rows_ = 0;
  double time_shift_ = 0.0;
  double time_factor_ = 1.0;
  double energy_factor_ = 1.0;
  double ra_factor_ = 1.0;
  double dec_factor_ = 1.0;
  std::int64_t time_rows_read_ = 0;
  std::int64_t rows_read_ = 0;
};

}  // namespace binflow::science::dl3
