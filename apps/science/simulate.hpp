#pragma once
// Poisson realisations of the model of SCIENCE.md (sections 2 and 4) on an observation's GTIs.
//
// Time is cut into fixed slices of `slice` seconds from the first GTI start; slice k draws
// everything from RngStream(seed, k) alone (its two Poisson counts first, then its events),
// and its events are sorted by time. The output is therefore the same bits for any number of
// ranks and threads, and the counts of a slice can be drawn without its events (the first
// pass of the parallel writer).
//
// Source: N0 (E / 1 TeV)^-gamma f(t) aeff(E), events at a 2-D Gaussian PSF offset of
// sigma(E) from (ra, dec): offset sigma sqrt(-2 ln u), uniform bearing. Background:
// beta bkg_rate(E) per deg^2 of solid angle, uniform on the spherical cap theta < theta_sim
// around (ra, dec) (uniform in cos theta). Both are placed with offset_direction, exactly.
// Energies cover the whole IRF grid; an analysis cuts its own emin/emax. Livetime is the GTI
// time times (1 - deadtime_fraction). A nested analysis (a pull trial) may pass its cuts as a
// RoiFilter: the events are drawn exactly as without it, and only those the cuts can select
// get a direction, a time and a place in memory (85 % of a 30-minute trial's are skipped).
//
// Energies are drawn by exact inversion of the cumulative spectrum: between grid energies
// the response is log-log linear (SCIENCE.md section 1), so the density in ln E is one
// exponential per grid cell, integrated and inverted in closed form (no table, and no
// discretisation error to document).

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "binflow/rng.hpp"
#include "binflow/runtime.hpp"
#include "science/defaults.hpp"
#include "science/geometry.hpp"
#include "science/observation.hpp"
#include "science/phase.hpp"
#include "science/response.hpp"

namespace binflow::science {

namespace detail {
/// A spectrum sampled by exact inversion: on each grid cell [E_i, E_i+1] the density in
/// u = ln E is exp(l_i + (l_i+1 - l_i) (u - u_i) / (u_i+1 - u_i)) (zero if either l is
/// -inf), which is what log-log interpolation of the response times a power law gives.
/// Immutable, thread-safe.
class LogLogSpectrum {
public:
  LogLogSpectrum() = default;
  /// `log_density` at the grid energies (per unit ln E), -inf for zero.
  LogLogSpectrum(const std::vector<double>& energy, std::vector<double> log_density);
  /// Int density du over the grid.
  [[nodiscard]] double total() const { return cumulative_.empty() ? 0.0 : cumulative_.back(); }
  /// The energy whose cumulative fraction is `uniform` in (0, 1); requires total() > 0.
  [[nodiscard]] double sample(double uniform) const;

  /// Thresholds on uniform * total() outside which sample() lies in a cell entirely below
  /// emin or entirely above emax: the comparisons sample() makes to choose its cell, so that
  /// may_reach() is false only where sample() is certainly outside [emin, emax] (exactly,
  /// with no margin), and costs no exp or log.
  struct Reach {
    double from = -std::numeric_limits<double>::infinity();  ///< below: a cell under emin
    double below = std::numeric_limits<double>::infinity();  ///< from here: a cell over emax
  };
  [[nodiscard]] Reach reach(double emin, double emax) const;
  [[nodiscard]] bool may_reach(const Reach& r, double uniform) const {
    const double y = uniform * total();  // sample()'s y
    // At y >= total() sample() takes the top of the last live cell, wherever that is.
    return y >= r.from && (y < r.below || y >= total());
  }

private:
  struct Cell {
    double width;  ///< u_i+1 - u_i
    double slope;  ///< l_i+1 - l_i
    double base;   ///< exp(l_i) width
    double top;    ///< expm1(slope)
  };
  std::vector<double> energy_;
  std::vector<double> log_energy_;
  std::vector<double> log_density_;
  std::vector<double> cumulative_;  ///< integral below grid energy i
  std::vector<Cell> cells_;         ///< cell i = [E_i, E_i+1]
};
}  // namespace detail

/// The simulated sky: a point source and the background normalisation.
struct SourceModel {
  double ra = defaults::ra;                ///< source position, deg
  double dec = defaults::dec;              ///< deg
  double n0 = defaults::n0;                ///< ph cm^-2 s^-1 TeV^-1 at 1 TeV, >= 0
  double gamma = defaults::gamma;          ///< power-law index
  double beta = defaults::beta;            ///< background normalisation, >= 0
  double theta_sim = defaults::theta_sim;  ///< radius of the background cap, deg, in (0, 90]
};

/// The source's light curve f(t) >= 0 that multiplies the flux. Immutable, thread-safe.
class TimeProfile {
public:
  /// f = 1.
  static TimeProfile constant();
  /// f = 1 + amplitude exp(-(t - t_peak)^2 / (2 width^2)). UsageError naming the parameter
  /// unless amplitude >= 0, width > 0 and all are finite.
  static TimeProfile flare(double amplitude, double t_peak, double width);
  /// Piecewise linear through (time[i], value[i]); before the first and after the last time
  /// the end values hold. Times (MET s) strictly increasing, values finite and >= 0, at
  /// least one point. UsageError naming `source` otherwise.
  static TimeProfile table(std::vector<double> time, std::vector<double> value,
                           const std::string& source);
  /// table() from a text file of two columns "time value" (MET s, whitespace or comma
  /// separated); blank lines and lines starting with '#' are skipped. UsageError naming
  /// path:line for a bad line, and the path for a missing or unreadable file.
  static TimeProfile from_file(const std::string& path);
  /// A pulsar: f = (1 - pulsed_fraction) + pulsed_fraction g(phase(t)), phase from
  /// `ephemeris` (phase.hpp) and g the wrapped Gaussian density on the phase circle,
  /// g(x) = sum_k exp(-(x - peak_phase + k)^2 / (2 peak_width^2)) / (peak_width sqrt(2 pi)),
  /// whose mean over phase is 1: the mean flux over a turn is N0 whatever the pulsed
  /// fraction. UsageError naming the parameter unless pulsed_fraction is in [0, 1],
  /// peak_phase is finite, peak_width is in (0, 0.5], and validate_ephemeris passes.
  static TimeProfile pulsar(double pulsed_fraction, double peak_phase, double peak_width,
                            const Ephemeris& ephemeris);

  [[nodiscard]] double operator()(double t) const;
  /// Int_t0^t1 f dt: exact for constant, flare and table, and for a pulsar with f1 = f2 = 0
  /// (the phase is linear in t; the integral of g is a sum of erfc); a pulsar with f1 or f2
  /// uses 8-point Gauss-Legendre on pieces of at most peak_width / 4 of phase (relative
  /// error below 1e-12 for a Gaussian).
  [[nodiscard]] double integral(double t0, double t1) const;
  /// An upper bound of f on [t0, t1] (the maximum itself for constant, flare and table; the
  /// peak value (1 - pulsed_fraction) + pulsed_fraction g(peak_phase) for a pulsar).
  [[nodiscard]] double max(double t0, double t1) const;
  [[nodiscard]] bool is_constant() const { return kind_ == Kind::constant; }
  /// "constant", "flare", "table" or "pulsar", for logs.
  [[nodiscard]] std::string name() const;

private:
  enum class Kind { constant, flare, table, pulsar };
  [[nodiscard]] double pulse_shape(double phase) const;     // g
  [[nodiscard]] double pulse_integral(double phase) const;  // Int_0^phase g
  [[nodiscard]] double pulsar_integral(double t0, double t1) const;
  Kind kind_ = Kind::constant;
  double amplitude_ = 0.0;
  double t_peak_ = 0.0;
  double width_ = 1.0;
  std::vector<double> time_;
  std::vector<double> value_;
  double pulsed_fraction_ = 0.0;
  double peak_phase_ = 0.0;  // in [0, 1)
  Ephemeris ephemeris_;
};

/// What a nested analysis can select: the region of interest of SCIENCE.md section 2
/// without its time cut, emin <= E <= emax (closed) and theta < theta_max (strict), theta the
/// great-circle distance of an event's stored direction from (ra, dec).
struct RoiFilter {
  double ra = defaults::ra;  ///< deg
  double dec = defaults::dec;
  double theta_max = defaults::theta_max;  ///< deg
  double emin = defaults::emin;            ///< TeV
  double emax = defaults::emax;
};

/// Counts of one slice: the Poisson means and the numbers drawn.
struct SliceCounts {
  double expected_source = 0.0;
  double expected_background = 0.0;
  std::uint64_t source = 0;
  std::uint64_t background = 0;
  [[nodiscard]] std::uint64_t total() const { return source + background; }
};

/// One observation's simulation set up once (rates, spectra, slices). Immutable after
/// construction and thread-safe; every rank builds the same one from the same inputs.
class Simulator {
public:
  /// UsageError for a bad model (n0 < 0, beta < 0, theta_sim outside (0, 90], non-finite
  /// values, dec outside [-90, 90]) or slice <= 0, naming the parameter.
  Simulator(const Observation& observation, const Response& response, const SourceModel& model,
            TimeProfile profile, double slice = 60.0);

  /// Number of slices from the first GTI start to the last GTI stop (0 without GTIs).
  [[nodiscard]] std::int64_t slices() const { return slices_; }
  /// [start, stop) of slice k, s.
  [[nodiscard]] std::pair<double, double> slice_range(std::int64_t k) const;
  /// Source and background events per s of livetime at f = 1, over the whole energy grid.
  [[nodiscard]] double source_rate() const { return source_rate_; }
  [[nodiscard]] double background_rate() const { return background_rate_; }
  /// Expected source and background events of the whole observation.
  [[nodiscard]] std::pair<double, double> expected() const;

  /// The counts of slice k drawn from RngStream(seed, k) without its events.
  [[nodiscard]] SliceCounts counts(std::uint64_t seed, std::int64_t k) const;
  /// The events of slice k, sorted by time (the same counts as counts(seed, k)).
  [[nodiscard]] Events events(std::uint64_t seed, std::int64_t k) const;
  /// The events of slice k that an analysis with the cuts of `keep` can select: a
  /// subsequence of events(seed, k), the same bits in the same order, holding every one of
  /// its events inside `keep`. Each event makes the same draws as in events(seed, k), so the
  /// stream and the events kept are unchanged; an event whose energy is outside [emin, emax]
  /// (decided before its inversion where the cell alone decides, see Reach), or whose drawn
  /// offset from the source is at least theta_max (1 + 1e-9) + 1e-9 deg plus the distance
  /// from the source to (keep.ra, keep.dec), is dropped before its direction, time and sort
  /// are computed (its remaining draws skipped with RngStream::discard). The margin is far
  /// above the ulps by which the distance of a stored direction differs from the drawn
  /// offset; the exact theta < theta_max is the analysis's cut.
  [[nodiscard]] Events events(std::uint64_t seed, std::int64_t k, const RoiFilter& keep) const;

private:
  struct Window;  // one slice's overlap with the GTIs
  struct Cut;     // a RoiFilter as draws are tested against it
  [[nodiscard]] Window window(std::int64_t k) const;
  [[nodiscard]] SliceCounts draw_counts(RngStream& rng, const Window& w) const;
  [[nodiscard]] Cut cut(const RoiFilter& keep) const;
  [[nodiscard]] Events draw_events(std::uint64_t seed, std::int64_t k, const Cut* cut) const;

  Gti gti_;
  Response response_;
  SourceModel model_;
  TimeProfile profile_;
  OffsetFrame source_frame_;  // offset_direction() around (model ra, dec)
  double live_fraction_ = 1.0;
  double slice_ = 60.0;
  double tstart_ = 0.0;
  double tstop_ = 0.0;
  std::int64_t slices_ = 0;
  detail::LogLogSpectrum source_spectrum_;      // per s of livetime at f = 1
  detail::LogLogSpectrum background_spectrum_;  // per s of livetime, whole cap
  double source_rate_ = 0.0;
  double background_rate_ = 0.0;
  double cap_half_angle_sine_ = 0.0;  // sin(theta_sim / 2)
};

/// All events of a simulation in memory (for nested use, e.g. pull trials), sorted by time.
/// Slices run in parallel on `threads` >= 1 OpenMP threads (normally the calling bin's
/// budget); the result does not depend on the thread count. Not collective; thread-safe.
Events simulate_events(const Observation& observation, const Response& response,
                       const SourceModel& model, const TimeProfile& profile, std::uint64_t seed,
                       double slice, int threads);
/// An in-memory simulation: its events and how many were drawn.
struct SimulatedEvents {
  Events events;  ///< sorted by time; with a RoiFilter only those it keeps
  /// Events drawn, the slices' Poisson counts: kept or not, the number of events the file
  /// of the same simulation and seed holds.
  std::int64_t drawn = 0;
};
/// The same with a simulator already built; `before_allocate`, if set, is called with the
/// number of events drawn (the slices' counts) before any event is made. With `keep`, the
/// slices are Simulator::events(seed, k, *keep): the events an analysis with those cuts
/// selects are exactly, bit for bit and in order, those it selects from the simulation
/// without `keep` (a pull trial's nested fit), at a fraction of the cost.
SimulatedEvents simulate_events(const Simulator& simulator, std::uint64_t seed, int threads,
                                const BeforeRead& before_allocate = {},
                                const std::optional<RoiFilter>& keep = {});

/// What simulate_to_file did (the same on every rank).
struct SimulationSummary {
  std::int64_t events = 0;
  std::int64_t slices = 0;
  std::uint64_t source = 0;
  std::uint64_t background = 0;
  double expected_source = 0.0;
  double expected_background = 0.0;
  // Wall seconds on this rank (they differ between ranks): pass 1, event generation, and
  // the rest of pass 2 (file creation, collective writes, close and rename).
  double count_seconds = 0.0;
  double generate_seconds = 0.0;
  double write_seconds = 0.0;
};

/// Collective over comm: writes the event file `path` (EventFileWriter: temporary name,
/// renamed at the end). Slices are spread over ranks in contiguous blocks. Pass 1 draws
/// each slice's counts only, MPI_Exscan gives each rank its first row, pass 2 generates the
/// events a batch of `threads` slices at a time (one per OpenMP thread; `threads` >= 1 is
/// this rank's budget) and writes them in collective rounds, so a rank never holds more
/// than one batch plus the write buffer. `provenance` becomes string attributes of the
/// group /simulation.
SimulationSummary simulate_to_file(
    const std::string& path, const Observation& observation, const Simulator& simulator,
    std::uint64_t seed, int threads, const Communicator& comm,
    const std::vector<std::pair<std::string, std::string>>& provenance = {});

}  // namespace binflow::science
