#include "science/simulate.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>
#include <numbers>

#include <fmt/format.h>

#include "binflow/error.hpp"
#include "binflow/parallel.hpp"
#include "binflow/runtime.hpp"
#include "science/event_file.hpp"
#include "science/geometry.hpp"
#include "science/gti.hpp"

namespace binflow::science {

namespace {

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

constexpr double deg = std::numbers::pi / 180.0;
constexpr double minus_inf = -std::numeric_limits<double>::infinity();

// More slices than this means a slice length that is a typo (and vectors of counts that do
// not fit in memory).
constexpr double max_slices = 0x1p40;

void require_finite(double value, std::string_view name) {
  if (!std::isfinite(value))
    throw UsageError(fmt::format("{}: {} is not a finite number", name, value));
}

void append(Events& to, const Events& from) {
  to.time.insert(to.time.end(), from.time.begin(), from.time.end());
  to.energy.insert(to.energy.end(), from.energy.begin(), from.energy.end());
  to.ra.insert(to.ra.end(), from.ra.begin(), from.ra.end());
  to.dec.insert(to.dec.end(), from.dec.begin(), from.dec.end());
}

std::string_view trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r");
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(" \t\r");
  return s.substr(first, last - first + 1);
}

}  // namespace

// ---- time profile ----

TimeProfile TimeProfile::constant() { return {}; }

TimeProfile TimeProfile::flare(double amplitude, double t_peak, double width) {
  require_finite(amplitude, "amplitude");
  require_finite(t_peak, "t_peak");
  require_finite(width, "width");
  if (amplitude < 0.0)
    throw UsageError(fmt::format("amplitude: {} is negative (f must stay >= 0)", amplitude));
  if (width <= 0.0) throw UsageError(fmt::format("width: {} s is not > 0", width));
  TimeProfile p;
  p.kind_ = Kind::flare;
  p.amplitude_ = amplitude;
  p.t_peak_ = t_peak;
  p.width_ = width;
  return p;
}

TimeProfile TimeProfile::table(std::vector<double> time, std::vector<double> value,
                               const std::string& source) {
  if (time.empty() || time.size() != value.size()) {
    throw UsageError(
        fmt::format("{}: a profile table needs at least one point and as many values "
                    "as times ({} times, {} values)",
                    source, time.size(), value.size()));
  }
  for (std::size_t i = 0; i < time.size(); ++i) {
    if (!std::isfinite(time[i]) || !std::isfinite(value[i])) {
      throw UsageError(
          fmt::format("{}: point {} ({}, {}) is not finite", source, i, time[i], value[i]));
    }
    if (value[i] < 0.0)
      throw UsageError(fmt::format("{}: point {} has f = {} < 0", source, i, value[i]));
    if (i > 0 && time[i] <= time[i - 1]) {
      throw UsageError(fmt::format("{}: point {} at time {} does not come after {}", source, i,
                                   time[i], time[i - 1]));
    }
  }
  TimeProfile p;
  p.kind_ = Kind::table;
  p.time_ = std::move(time);
  p.value_ = std::move(value);
  return p;
}

TimeProfile TimeProfile::from_file(const std::string& path) {
  std::ifstream in(path);
  if (!in)
    throw UsageError(
        fmt::format("{}: cannot open the profile table (missing or unreadable)", path));
  std::vector<double> time;
  std::vector<double> value;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    std::string_view text = trim(line);
    if (text.empty() || text.front() == '#') continue;
    std::string words(text);
    std::replace(words.begin(), words.end(), ',', ' ');
    std::array<double, 2> pair{};
    std::string_view rest = words;
    bool ok = true;
    for (double& x : pair) {
      rest = trim(rest);
      const auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), x);
      if (ec != std::errc{}) {
        ok = false;
        break;
      }
      rest.remove_prefix(static_cast<std::size_t>(end - rest.data()));
      if (!rest.empty() && rest.front() != ' ' && rest.front() != '\t') ok = false;
    }
    if (!ok || !trim(rest).empty()) {
      throw UsageError(
          fmt::format("{}:{}: expected two numbers 'time value', got '{}'", path, number, text));
    }
    if (!std::isfinite(pair[0]) || !std::isfinite(pair[1])) {
      throw UsageError(
          fmt::format("{}:{}: time and value must be finite, got '{}'", path, number, text));
    }
    if (pair[1] < 0.0)
      throw UsageError(
          fmt::format("{}:{}: f = {} is negative (f must be >= 0)", path, number, pair[1]));
    if (!time.empty() && pair[0] <= time.back()) {
      throw UsageError(fmt::format("{}:{}: time {} does not come after the previous time {}", path,
                                   number, pair[0], time.back()));
    }
    time.push_back(pair[0]);
    value.push_back(pair[1]);
  }
  if (in.bad()) throw UsageError(fmt::format("{}: read error in the profile table", path));
  if (time.empty())
    throw UsageError(fmt::format("{}: no 'time value' lines in the profile table", path));
  return table(std::move(time), std::move(value), path);
}

TimeProfile TimeProfile::pulsar(double pulsed_fraction, double peak_phase, double peak_width,
                                const Ephemeris& ephemeris) {
  require_finite(pulsed_fraction, "pulsed_fraction");
  require_finite(peak_phase, "peak_phase");
  require_finite(peak_width, "peak_width");
  if (pulsed_fraction < 0.0 || pulsed_fraction > 1.0) {
    throw UsageError(fmt::format("pulsed_fraction: {} is outside [0, 1]", pulsed_fraction));
  }
  if (!(peak_width > 0.0 && peak_width <= 0.5)) {
    throw UsageError(fmt::format("peak_width: {} (in phase) is outside (0, 0.5]", peak_width));
  }
  validate_ephemeris(ephemeris);
  TimeProfile p;
  p.kind_ = Kind::pulsar;
  p.pulsed_fraction_ = pulsed_fraction;
  p.peak_phase_ = peak_phase - std::floor(peak_phase);
  p.width_ = peak_width;
  p.ephemeris_ = ephemeris;
  return p;
}

namespace {

// Images k of the peak with mass in [0, 1): |x - peak + k| < 8 widths for some x in [0, 1).
int wrapped_images(double width) { return static_cast<int>(std::ceil(8.0 * width)) + 1; }

// Standard normal CDF, accurate in both tails.
double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::numbers::sqrt2); }

// Gauss-Legendre, 8 nodes on [-1, 1] (Abramowitz & Stegun 25.4.30).
constexpr std::array<double, 4> gl_node = {0.1834346424956498, 0.5255324099163290,
                                           0.7966664774136267, 0.9602898564975363};
constexpr std::array<double, 4> gl_weight = {0.3626837833783620, 0.3137066458778873,
                                             0.2223810344533745, 0.1012285362903763};

}  // namespace

double TimeProfile::pulse_shape(double phase) const {
  const int images = wrapped_images(width_);
  double sum = 0.0;
  for (int k = -images; k <= images; ++k) {
    const double z = (phase - peak_phase_ + k) / width_;
    sum += std::exp(-0.5 * z * z);
  }
  return sum / (width_ * std::sqrt(2.0 * std::numbers::pi));
}

double TimeProfile::pulse_integral(double phase) const {
  const int images = wrapped_images(width_);
  double sum = 0.0;
  for (int k = -images; k <= images; ++k) {
    const double a = (k - peak_phase_) / width_;
    const double b = (phase - peak_phase_ + k) / width_;
    // The difference of CDFs on the side away from the mean keeps the tails accurate.
    sum += b <= 0.0 ? normal_cdf(b) - normal_cdf(a) : normal_cdf(-a) - normal_cdf(-b);
  }
  return sum;
}

double TimeProfile::pulsar_integral(double t0, double t1) const {
  const Ephemeris& e = ephemeris_;
  if (e.f1 == 0.0 && e.f2 == 0.0) {
    // Phase linear in t: Int g(phase(t)) dt = (G(c1) - G(c0)) / f0 with G(c) = turns +
    // Int_0^frac(c) g (one full turn of g integrates to 1).
    const Ephemeris::Cycles c0 = e.cycles(t0);
    const Ephemeris::Cycles c1 = e.cycles(t1);
    const double turns = static_cast<double>(c1.turns - c0.turns);
    const double pulsed = (turns + pulse_integral(c1.phase) - pulse_integral(c0.phase)) / e.f0;
    return (1.0 - pulsed_fraction_) * (t1 - t0) + pulsed_fraction_ * pulsed;
  }
  // |d phase / dt| is largest at an end or at the vertex of the quadratic frequency.
  double nu = std::max(std::abs(e.frequency(t0)), std::abs(e.frequency(t1)));
  if (e.f2 != 0.0) {
    const double vertex = e.t_ref - e.f1 / e.f2;
    if (vertex > t0 && vertex < t1) nu = std::max(nu, std::abs(e.frequency(vertex)));
  }
  const double pieces = std::clamp(std::ceil((t1 - t0) * nu / (0.25 * width_)), 1.0, 1e8);
  const auto n = static_cast<std::int64_t>(pieces);
  const double h = (t1 - t0) / pieces;
  double total = 0.0;
  for (std::int64_t i = 0; i < n; ++i) {
    const double mid = t0 + (static_cast<double>(i) + 0.5) * h;
    double piece = 0.0;
    for (std::size_t j = 0; j < gl_node.size(); ++j) {
      const double d = 0.5 * h * gl_node[j];
      piece += gl_weight[j] * ((*this)(mid - d) + (*this)(mid + d));
    }
    total += 0.5 * h * piece;
  }
  return total;
}

double TimeProfile::operator()(double t) const {
  switch (kind_) {
    case Kind::constant:
      return 1.0;
    case Kind::pulsar:
      return (1.0 - pulsed_fraction_) + pulsed_fraction_ * pulse_shape(ephemeris_.phase(t));
    case Kind::flare: {
      const double z = (t - t_peak_) / width_;
      return 1.0 + amplitude_ * std::exp(-0.5 * z * z);
    }
    case Kind::table:
      break;
  }
  if (t <= time_.front()) return value_.front();
  if (t >= time_.back()) return value_.back();
  const auto i =
      static_cast<std::size_t>(std::upper_bound(time_.begin(), time_.end(), t) - time_.begin()) - 1;
  const double w = (t - time_[i]) / (time_[i + 1] - time_[i]);
  return value_[i] + w * (value_[i + 1] - value_[i]);
}

double TimeProfile::integral(double t0, double t1) const {
  if (!(t1 > t0)) return 0.0;
  switch (kind_) {
    case Kind::constant:
      return t1 - t0;
    case Kind::flare: {
      // erfc on the side away from the peak keeps the tail accurate (erf differences cancel).
      const double scale = std::numbers::sqrt2 * width_;
      const double a = (t0 - t_peak_) / scale;
      const double b = (t1 - t_peak_) / scale;
      double mass = 0.0;
      if (a >= 0.0) {
        mass = std::erfc(a) - std::erfc(b);
      } else if (b <= 0.0) {
        mass = std::erfc(-b) - std::erfc(-a);
      } else {
        mass = std::erf(b) - std::erf(a);
      }
      return (t1 - t0) + amplitude_ * width_ * std::sqrt(std::numbers::pi / 2.0) * mass;
    }
    case Kind::pulsar:
      return pulsar_integral(t0, t1);
    case Kind::table:
      break;
  }
  // Trapezoids between t0, the table times inside (t0, t1), and t1: exact for a piecewise
  // linear f with constant ends.
  double total = 0.0;
  double t = t0;
  double f = (*this)(t0);
  auto it = std::upper_bound(time_.begin(), time_.end(), t0);
  for (; it != time_.end() && *it < t1; ++it) {
    const double fn = value_[static_cast<std::size_t>(it - time_.begin())];
    total += 0.5 * (f + fn) * (*it - t);
    t = *it;
    f = fn;
  }
  return total + 0.5 * (f + (*this)(t1)) * (t1 - t);
}

double TimeProfile::max(double t0, double t1) const {
  switch (kind_) {
    case Kind::constant:
      return 1.0;
    case Kind::flare:
      return (*this)(std::clamp(t_peak_, t0, t1));  // f is unimodal around t_peak
    case Kind::pulsar:
      return (1.0 - pulsed_fraction_) + pulsed_fraction_ * pulse_shape(peak_phase_);
    case Kind::table:
      break;
  }
  double m = std::max((*this)(t0), (*this)(t1));
  for (auto it = std::upper_bound(time_.begin(), time_.end(), t0); it != time_.end() && *it < t1;
       ++it) {
    m = std::max(m, value_[static_cast<std::size_t>(it - time_.begin())]);
  }
  return m;
}

std::string TimeProfile::name() const {
  switch (kind_) {
    case Kind::constant:
      return "constant";
    case Kind::flare:
      return "flare";
    case Kind::table:
      return "table";
    case Kind::pulsar:
      return "pulsar";
  }
  return "?";
}

// ---- spectra ----

namespace detail {

LogLogSpectrum::LogLogSpectrum(const std::vector<double>& energy, std::vector<double> log_density)
    : energy_(energy), log_density_(std::move(log_density)) {
  const std::size_t n = energy_.size();
  if (n < 2 || log_density_.size() != n) {
    throw InternalError(
        fmt::format("LogLogSpectrum: {} energies and {} densities", n, log_density_.size()));
  }
  log_energy_.resize(n);
  std::transform(energy_.begin(), energy_.end(), log_energy_.begin(),
                 [](double e) { return std::log(e); });
  cumulative_.assign(n, 0.0);
  for (std::size_t i = 0; i + 1 < n; ++i) {
    const double l0 = log_density_[i];
    const double l1 = log_density_[i + 1];
    double cell = 0.0;
    if (std::isfinite(l0) && std::isfinite(l1)) {
      const double h = log_energy_[i + 1] - log_energy_[i];
      const double d = l1 - l0;
      cell = std::exp(l0) * h * (std::abs(d) < 1e-10 ? 1.0 + 0.5 * d : std::expm1(d) / d);
    }
    cumulative_[i + 1] = cumulative_[i] + cell;
  }
  // What sample() needs of a cell besides its cumulative mass, computed once here with the
  // same expressions (the same bits) instead of at every sample: an exp and an expm1 fewer.
  cells_.resize(n - 1);
  for (std::size_t i = 0; i + 1 < n; ++i) {
    Cell& c = cells_[i];
    c.width = log_energy_[i + 1] - log_energy_[i];
    c.slope = log_density_[i + 1] - log_density_[i];
    c.base = std::exp(log_density_[i]) * c.width;
    c.top = std::expm1(c.slope);
  }
}

double LogLogSpectrum::sample(double uniform) const {
  const double total_mass = total();
  double y = uniform * total_mass;
  // Cell i holds [cumulative_[i], cumulative_[i+1]); cells of zero mass are never chosen.
  auto cell = static_cast<std::size_t>(std::upper_bound(cumulative_.begin(), cumulative_.end(), y) -
                                       cumulative_.begin());
  if (cell >= cumulative_.size()) {  // y rounded up to the total: the top of the last live cell
    cell = cumulative_.size() - 1;
    while (cell > 1 && cumulative_[cell - 1] == total_mass) --cell;
    y = total_mass;
  }
  const std::size_t i = cell - 1;
  const Cell& c = cells_[i];
  const double h = c.width;
  const double d = c.slope;
  const double base = c.base;
  const double r = y - cumulative_[i];
  // Solve base (exp(d w) - 1) / d = r for the fraction w of the cell. x = r d / base runs from
  // 0 at the bottom of the cell to expm1(d) at its top, and rounding may carry it past the
  // top: a min for a rising density (d > 0), a max for a falling one (x and top negative).
  // (The max alone put every sample of a rising cell at its top.)
  const double top = c.top;
  const double x = r * d / base;
  double w = std::abs(d) < 1e-10 ? r / base
                                 : std::log1p(d > 0.0 ? std::min(x, top) : std::max(x, top)) / d;
  if (!(w >= 0.0)) w = 0.0;
  w = std::min(w, 1.0);
  return std::clamp(std::exp(log_energy_[i] + w * h), energy_[i], energy_[i + 1]);
}

LogLogSpectrum::Reach LogLogSpectrum::reach(double emin, double emax) const {
  // sample() picks the cell c - 1 with c the first index where cumulative_[c] > y, and
  // clamps its energy into that cell. y < cumulative_[j] puts c <= j, so with E_j < emin the
  // energy is at most E_j; cumulative_[m] <= y < total() puts c - 1 >= m, so with E_m > emax
  // it is at least E_m. (NaN bounds select nothing here: every draw may reach.)
  Reach r;
  const std::size_t n = energy_.size();
  for (std::size_t j = 0; j < n && energy_[j] < emin; ++j) r.from = cumulative_[j];
  for (std::size_t m = n; m > 0 && energy_[m - 1] > emax; --m) r.below = cumulative_[m - 1];
  return r;
}

}  // namespace detail

// ---- simulator ----

// The margin of a drawn offset over theta_max before an event is dropped: a stored
// direction's distance from the source differs from its drawn offset by rounding, about
// 1e-14 deg (ulps of ra and dec near 100 deg), far below both terms.
constexpr double theta_margin_relative = 1e-9;
constexpr double theta_margin_deg = 1e-9;

struct Simulator::Cut {
  detail::LogLogSpectrum::Reach source_energy;
  detail::LogLogSpectrum::Reach background_energy;
  double emin = 0.0;
  double emax = 0.0;
  double offset_limit = 0.0;  // drawn offsets in [offset_limit, 180] deg are dropped

  [[nodiscard]] bool holds_energy(double e) const { return e >= emin && e <= emax; }
  // Up to 180 deg a drawn offset is the distance of the direction; beyond it the direction
  // comes back towards the source, so those (a PSF of tens of degrees) are always kept.
  [[nodiscard]] bool drops_offset(double offset) const {
    return offset >= offset_limit && offset <= 180.0;
  }
};

struct Simulator::Window {
  double start = 0.0;
  double stop = 0.0;
  std::vector<std::pair<double, double>> pieces;  // [lo, hi) parts inside GTIs
  std::vector<double> last;                       // of each piece: the double below hi
  double ontime = 0.0;
  double profile_integral = 0.0;  // Int f dt over the pieces
  double profile_max = 1.0;

  // Uniform in the union of the pieces (half-open: never a piece's stop) for a uniform u.
  [[nodiscard]] double time(double u) const {
    double x = u * ontime;
    for (std::size_t j = 0; j < pieces.size(); ++j) {
      const auto [lo, hi] = pieces[j];
      if (x < hi - lo || j + 1 == pieces.size()) return std::clamp(lo + x, lo, last[j]);
      x -= hi - lo;
    }
    throw InternalError("uniform_time: a slice with counts but no time inside a GTI");
  }
};

Simulator::Simulator(const Observation& observation, const Response& response,
                     const SourceModel& model, TimeProfile profile, double slice)
    : gti_(observation.gti),
      response_(response),
      model_(model),
      profile_(std::move(profile)),
      source_frame_(model.ra, model.dec),
      slice_(slice) {
  for (const auto& [name, value] : {std::pair{"ra", model.ra},
                                    {"dec", model.dec},
                                    {"N0", model.n0},
                                    {"gamma", model.gamma},
                                    {"beta", model.beta},
                                    {"theta_sim", model.theta_sim},
                                    {"slice", slice}}) {
    require_finite(value, name);
  }
  if (std::abs(model.dec) > 90.0)
    throw UsageError(fmt::format("dec: {} is outside [-90, 90]", model.dec));
  if (model.n0 < 0.0) throw UsageError(fmt::format("N0: {} is negative", model.n0));
  if (model.beta < 0.0) throw UsageError(fmt::format("beta: {} is negative", model.beta));
  if (!(model.theta_sim > 0.0 && model.theta_sim <= 90.0)) {
    throw UsageError(fmt::format("theta_sim: {} deg is outside (0, 90]", model.theta_sim));
  }
  if (!(slice > 0.0)) throw UsageError(fmt::format("slice: {} s is not > 0", slice));
  const double deadtime = observation.info.deadtime_fraction;
  if (!(deadtime >= 0.0 && deadtime < 1.0)) {
    throw UsageError(fmt::format("deadtime_fraction: {} is outside [0, 1)", deadtime));
  }
  validate_gti(gti_, "observation");
  live_fraction_ = 1.0 - deadtime;

  if (gti_.size() > 0) {
    tstart_ = gti_.start.front();
    tstop_ = gti_.stop.back();
    const double n = std::ceil((tstop_ - tstart_) / slice_);
    if (n > max_slices) {
      throw UsageError(
          fmt::format("slice: {} s cuts the observation into {:.3g} slices (at most "
                      "2^40)",
                      slice_, n));
    }
    slices_ = static_cast<std::int64_t>(n);
  }

  const IrfTables& irf = response_.tables();
  const std::size_t n = irf.energy.size();
  // Solid angle of the cap, 2 pi (1 - cos theta) = 4 pi sin^2(theta / 2), in deg^2.
  cap_half_angle_sine_ = std::sin(0.5 * model.theta_sim * deg);
  const double cap_deg2 =
      4.0 * std::numbers::pi * cap_half_angle_sine_ * cap_half_angle_sine_ / (deg * deg);
  std::vector<double> source(n, minus_inf);
  std::vector<double> background(n, minus_inf);
  for (std::size_t i = 0; i < n; ++i) {
    const double u = std::log(irf.energy[i]);  // ln(E / 1 TeV); + u is the Jacobian dE = E du
    if (model.n0 > 0.0 && irf.aeff[i] > 0.0) {
      source[i] = std::log(model.n0) - model.gamma * u + std::log(irf.aeff[i]) + u;
    }
    if (model.beta > 0.0 && irf.bkg_rate[i] > 0.0) {
      background[i] = std::log(model.beta * cap_deg2) + std::log(irf.bkg_rate[i]) + u;
    }
  }
  source_spectrum_ = detail::LogLogSpectrum(irf.energy, std::move(source));
  background_spectrum_ = detail::LogLogSpectrum(irf.energy, std::move(background));
  source_rate_ = source_spectrum_.total();
  background_rate_ = background_spectrum_.total();
}

std::pair<double, double> Simulator::slice_range(std::int64_t k) const {
  const double start = tstart_ + static_cast<double>(k) * slice_;
  const double stop = k + 1 >= slices_ ? tstop_ : tstart_ + static_cast<double>(k + 1) * slice_;
  return {start, stop};
}

std::pair<double, double> Simulator::expected() const {
  double exposure = 0.0;
  double ontime_total = 0.0;
  for (std::size_t i = 0; i < gti_.size(); ++i) {
    exposure += profile_.integral(gti_.start[i], gti_.stop[i]);
    ontime_total += gti_.stop[i] - gti_.start[i];
  }
  return {source_rate_ * live_fraction_ * exposure,
          background_rate_ * live_fraction_ * ontime_total};
}

Simulator::Cut Simulator::cut(const RoiFilter& keep) const {
  Cut c;
  c.source_energy = source_spectrum_.reach(keep.emin, keep.emax);
  c.background_energy = background_spectrum_.reach(keep.emin, keep.emax);
  c.emin = keep.emin;
  c.emax = keep.emax;
  // Triangle inequality: an event at offset o from the source is at least o - s from a
  // centre s away from the source.
  const double s = angular_distance(model_.ra, model_.dec, keep.ra, keep.dec);
  c.offset_limit = keep.theta_max * (1.0 + theta_margin_relative) + theta_margin_deg + s;
  // NaN (a bad filter) keeps every direction.
  if (std::isnan(c.offset_limit)) c.offset_limit = std::numeric_limits<double>::infinity();
  return c;
}

Simulator::Window Simulator::window(std::int64_t k) const {
  Window w;
  std::tie(w.start, w.stop) = slice_range(k);
  auto i = static_cast<std::size_t>(std::upper_bound(gti_.stop.begin(), gti_.stop.end(), w.start) -
                                    gti_.stop.begin());
  for (; i < gti_.size() && gti_.start[i] < w.stop; ++i) {
    const double lo = std::max(w.start, gti_.start[i]);
    const double hi = std::min(w.stop, gti_.stop[i]);
    if (hi <= lo) continue;
    w.pieces.emplace_back(lo, hi);
    w.last.push_back(std::nextafter(hi, lo));
    w.ontime += hi - lo;
    w.profile_integral += profile_.integral(lo, hi);
  }
  w.profile_max = profile_.max(w.start, w.stop);
  return w;
}

SliceCounts Simulator::draw_counts(RngStream& rng, const Window& w) const {
  SliceCounts c;
  c.expected_source = source_rate_ * live_fraction_ * w.profile_integral;
  c.expected_background = background_rate_ * live_fraction_ * w.ontime;
  c.source = rng.poisson(c.expected_source);
  c.background = rng.poisson(c.expected_background);
  return c;
}

SliceCounts Simulator::counts(std::uint64_t seed, std::int64_t k) const {
  RngStream rng(seed, static_cast<std::uint64_t>(k));
  return draw_counts(rng, window(k));
}

namespace {

// The events in time order; equal times keep the order they were drawn in (what a stable
// sort by time gives), from one sort of (time, draw) keys, which compares without reaching
// into the time column (the stable sort of indices by raw.time took 11 % of a pull trial).
Events sorted_by_time(const Events& raw) {
  struct Key {
    double time;
    std::size_t draw;
  };
  std::vector<Key> keys(raw.size());
  for (std::size_t j = 0; j < keys.size(); ++j) keys[j] = {raw.time[j], j};
  std::sort(keys.begin(), keys.end(), [](const Key& a, const Key& b) {
    return a.time < b.time || (a.time == b.time && a.draw < b.draw);
  });
  Events out;
  out.reserve(raw.size());
  for (const Key& key : keys) {
    out.time.push_back(key.time);
    out.energy.push_back(raw.energy[key.draw]);
    out.ra.push_back(raw.ra[key.draw]);
    out.dec.push_back(raw.dec[key.draw]);
  }
  return out;
}

}  // namespace

Events Simulator::events(std::uint64_t seed, std::int64_t k) const {
  return draw_events(seed, k, nullptr);
}

Events Simulator::events(std::uint64_t seed, std::int64_t k, const RoiFilter& keep) const {
  const Cut c = cut(keep);
  return draw_events(seed, k, &c);
}

// Every event makes the same draws in the same order with or without a cut: source (time,
// with thinning for a varying profile), energy, offset, bearing; background time, energy,
// theta, bearing. With a cut an event is tested as soon as a draw can exclude it, and the
// draws it no longer needs are skipped with discard(); a time that is a single uniform (a
// constant profile, and every background event) is read back at its position only for the
// events kept, so most events cost one Philox block and a comparison.
Events Simulator::draw_events(std::uint64_t seed, std::int64_t k, const Cut* cut) const {
  RngStream rng(seed, static_cast<std::uint64_t>(k));
  const Window w = window(k);
  const SliceCounts c = draw_counts(rng, w);
  Events raw;
  // With a cut the events kept are a fraction not known in advance (15 % in a pull trial).
  if (cut == nullptr) raw.reserve(static_cast<std::size_t>(c.total()));
  const auto push = [&raw](double t, double e, SkyDirection dir) {
    raw.time.push_back(t);
    raw.energy.push_back(e);
    raw.ra.push_back(dir.ra);
    raw.dec.push_back(dir.dec);
  };
  const bool late_source_time = cut != nullptr && profile_.is_constant();
  for (std::uint64_t i = 0; i < c.source; ++i) {
    const std::uint64_t time_draw = rng.position();
    double t = 0.0;
    if (late_source_time) {
      rng.discard(1);
    } else {
      // Thinning: uniform times accepted with probability f(t) / max f over the slice.
      t = w.time(rng.uniform());
      if (!profile_.is_constant()) {
        while (rng.uniform() * w.profile_max > profile_(t)) t = w.time(rng.uniform());
      }
    }
    const double u_energy = rng.uniform();
    if (cut != nullptr && !source_spectrum_.may_reach(cut->source_energy, u_energy)) {
      rng.discard(2);
      continue;
    }
    const double e = source_spectrum_.sample(u_energy);
    if (cut != nullptr && !cut->holds_energy(e)) {
      rng.discard(2);
      continue;
    }
    const double offset = response_.psf_sigma(e) * std::sqrt(-2.0 * std::log(rng.uniform()));
    if (cut != nullptr && cut->drops_offset(offset)) {
      rng.discard(1);
      continue;
    }
    const double bearing = 2.0 * std::numbers::pi * rng.uniform();
    if (late_source_time) t = w.time(rng.uniform_at(time_draw));
    push(t, e, source_frame_(offset, bearing));
  }
  for (std::uint64_t i = 0; i < c.background; ++i) {
    const std::uint64_t time_draw = rng.position();
    double t = 0.0;
    if (cut != nullptr) {
      rng.discard(1);
    } else {
      t = w.time(rng.uniform());
    }
    const double u_energy = rng.uniform();
    if (cut != nullptr && !background_spectrum_.may_reach(cut->background_energy, u_energy)) {
      rng.discard(2);
      continue;
    }
    const double e = background_spectrum_.sample(u_energy);
    if (cut != nullptr && !cut->holds_energy(e)) {
      rng.discard(2);
      continue;
    }
    // Uniform in 1 - cos theta = 2 sin^2(theta / 2), written so that small angles keep
    // their precision (1 - cos loses half the digits at 0.3 deg).
    const double theta = 2.0 * std::asin(cap_half_angle_sine_ * std::sqrt(rng.uniform())) / deg;
    if (cut != nullptr && cut->drops_offset(theta)) {
      rng.discard(1);
      continue;
    }
    const double bearing = 2.0 * std::numbers::pi * rng.uniform();
    if (cut != nullptr) t = w.time(rng.uniform_at(time_draw));
    push(t, e, source_frame_(theta, bearing));
  }
  return sorted_by_time(raw);
}

Events simulate_events(const Observation& observation, const Response& response,
                       const SourceModel& model, const TimeProfile& profile, std::uint64_t seed,
                       double slice, int threads) {
  return simulate_events(Simulator(observation, response, model, profile, slice), seed, threads)
      .events;
}

// Slices differ in cost (GTI overlap, the time profile), hence the dynamic schedule.
SimulatedEvents simulate_events(const Simulator& simulator, std::uint64_t seed, int threads,
                                const BeforeRead& before_allocate,
                                const std::optional<RoiFilter>& keep) {
  SimulatedEvents out;
  // Two Poisson draws per slice: the count of the events drawn, kept or not.
  for (std::int64_t k = 0; k < simulator.slices(); ++k) {
    out.drawn += static_cast<std::int64_t>(simulator.counts(seed, k).total());
  }
  if (before_allocate) before_allocate(out.drawn);
  std::vector<Events> parts(static_cast<std::size_t>(simulator.slices()));
  parallel_for(
      threads, simulator.slices(),
      [&](std::int64_t k) {
        parts[static_cast<std::size_t>(k)] =
            keep ? simulator.events(seed, k, *keep) : simulator.events(seed, k);
      },
      LoopSchedule::dynamic);
  std::size_t total = 0;
  for (const Events& p : parts) total += p.size();
  out.events.reserve(total);
  for (const Events& p : parts) append(out.events, p);
  return out;
}

SimulationSummary simulate_to_file(
    const std::string& path, const Observation& observation, const Simulator& simulator,
    std::uint64_t seed, int threads, const Communicator& comm,
    const std::vector<std::pair<std::string, std::string>>& provenance) {
  const int rank = comm.rank();
  const int size = comm.size();
  const std::int64_t slices = simulator.slices();
  const std::int64_t first_slice = slices * rank / size;
  const std::int64_t last_slice = slices * (rank + 1) / size;

  const double start = wall_seconds();
  // Pass 1: counts only (two Poisson draws per slice).
  std::vector<SliceCounts> counts(static_cast<std::size_t>(last_slice - first_slice));
  parallel_for(
      threads, last_slice - first_slice,
      [&](std::int64_t i) {
        counts[static_cast<std::size_t>(i)] = simulator.counts(seed, first_slice + i);
      },
      LoopSchedule::dynamic);
  std::array<std::uint64_t, 3> local{};  // rows, source, background
  for (const SliceCounts& c : counts) {
    local[0] += c.total();
    local[1] += c.source;
    local[2] += c.background;
  }
  const std::array<std::uint64_t, 3> global = comm.sum(local);
  const std::uint64_t first_row = comm.exclusive_sum(local[0]);

  const double counted = wall_seconds();
  double generating = 0.0;
  EventFileWriter writer(path, observation, static_cast<std::int64_t>(global[0]), comm);
  if (!provenance.empty()) {
    const h5::Location group = writer.file().create_group("simulation");
    for (const auto& [name, value] : provenance) group.write_attribute(name, value);
  }

  // Pass 2: one slice per thread at a time, in slice order.
  const std::int64_t batch = threads;
  std::int64_t next = first_slice;
  const auto produce = [&]() {
    const double begin = wall_seconds();
    Events out;
    while (out.size() == 0 && next < last_slice) {
      const std::int64_t n = std::min(batch, last_slice - next);
      std::vector<Events> parts(static_cast<std::size_t>(n));
      parallel_for(
          threads, n,
          [&](std::int64_t j) {
            parts[static_cast<std::size_t>(j)] = simulator.events(seed, next + j);
          },
          LoopSchedule::dynamic);
      for (std::int64_t j = 0; j < n; ++j) {
        const Events& part = parts[static_cast<std::size_t>(j)];
        const SliceCounts& c = counts[static_cast<std::size_t>(next + j - first_slice)];
        if (part.size() != c.total()) {
          throw InternalError(fmt::format("slice {}: {} events generated but {} counted", next + j,
                                          part.size(), c.total()));
        }
        append(out, part);
      }
      next += n;
    }
    generating += wall_seconds() - begin;
    return out;
  };
  writer.write_rows(static_cast<std::int64_t>(first_row), static_cast<std::int64_t>(local[0]),
                    produce);
  writer.commit();

  SimulationSummary summary;
  summary.events = static_cast<std::int64_t>(global[0]);
  summary.slices = slices;
  summary.source = global[1];
  summary.background = global[2];
  std::tie(summary.expected_source, summary.expected_background) = simulator.expected();
  summary.count_seconds = counted - start;
  summary.generate_seconds = generating;
  summary.write_seconds = wall_seconds() - counted - generating;
  return summary;
}

}  // namespace binflow::science
