#include "science/dl3_simulate.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "binflow/error.hpp"
#include "science/integrate.hpp"
#include "science/simulate.hpp"

namespace binflow::science::dl3 {

namespace {

constexpr double minus_inf = -std::numeric_limits<double>::infinity();

// Bounds computed from the response's own values may fall below it by a few ulps (a knot
// recomputed as exp(ln E), a convex combination rounded up): a margin far above rounding and
// far below anything a test could see.
constexpr double bound_margin = 1.0 + 1e-9;

double log_or_minus_inf(double x) { return x > 0.0 ? std::log(x) : minus_inf; }

void require(bool ok, std::string_view name, double value, std::string_view rule) {
  if (!ok) throw UsageError(fmt::format("{}: {} {}", name, value, rule));
}

// The Simpson nodes of the likelihood's energy integrals and the response's knots in
// between: between two consecutive points aeff and the containment are bounded by their end
// values (dl3_response.hpp, energy_knots) and ln bkg_rate is linear in ln E.
std::vector<double> sampling_grid(const ObservationResponse& r, double emin, double emax) {
  std::vector<double> grid;
  const double a = std::log(emin);
  const double h = (std::log(emax) - a) / simpson_intervals;
  grid.push_back(emin);
  for (int k = 1; k < simpson_intervals; ++k) grid.push_back(std::exp(a + h * k));
  grid.push_back(emax);
  for (const double knot : r.energy_knots()) {
    if (knot > emin && knot < emax) grid.push_back(knot);
  }
  std::sort(grid.begin(), grid.end());
  grid.erase(std::unique(grid.begin(), grid.end()), grid.end());
  return grid;
}

}  // namespace

namespace detail {

// One observation's samplers. The source energy density in u = ln E is
// E^(1 - gamma) aeff(E) Fpsf(E); the envelope is E^(1 - gamma) H(E) with H log-linear between
// the grid points and H >= aeff Fpsf everywhere (see envelope()), sampled exactly by
// LogLogSpectrum, and a candidate E is accepted with probability aeff Fpsf / H.
struct TrialChannel {
  explicit TrialChannel(TrialObservation o)
      : response(std::move(o.response)), livetime(o.livetime) {}

  ObservationResponse response;
  double livetime = 0.0;
  double expected_source = 0.0;
  double expected_background = 0.0;
  std::vector<double> log_energy;    // the grid, ln TeV
  std::vector<double> log_envelope;  // ln H at the grid points
  science::detail::LogLogSpectrum source_envelope;
  science::detail::LogLogSpectrum background;  // exact: b is log-linear between grid points

  [[nodiscard]] double envelope(double energy) const;
};

struct TrialTables {
  std::vector<TrialChannel> channels;
  double theta_max = 0.0;
};

double TrialChannel::envelope(double energy) const {
  const double u = std::log(energy);
  const auto above = std::upper_bound(log_energy.begin(), log_energy.end(), u);
  const auto i = static_cast<std::size_t>(std::clamp<std::ptrdiff_t>(
      above - log_energy.begin() - 1, 0, static_cast<std::ptrdiff_t>(log_energy.size()) - 2));
  const double w = std::clamp((u - log_energy[i]) / (log_energy[i + 1] - log_energy[i]), 0.0, 1.0);
  // On a grid point that ends a cell of zero mass, the live side's value (never -inf * 0).
  if (w == 0.0) return std::exp(log_envelope[i]);
  if (w == 1.0) return std::exp(log_envelope[i + 1]);
  return std::exp((1.0 - w) * log_envelope[i] + w * log_envelope[i + 1]);
}

}  // namespace detail

namespace {

using detail::TrialChannel;

// H at the grid points: on cell j, aeff <= max of its ends (linear in ln E between knots)
// and Fpsf <= max(1, its ends) (a normalised Gaussian mixture is <= 1; a table's containment
// is convex in ln E between knots, the profile at each radius being max(0, linear)). A
// log-linear H whose point values bound both neighbouring cells stays above each cell's
// bound inside it (a geometric mean of two numbers >= M is >= M).
std::vector<double> log_envelope(const ObservationResponse& r, const std::vector<double>& grid,
                                 double theta_max) {
  const std::size_t n = grid.size();
  std::vector<double> aeff(n);
  std::vector<double> containment(n);
  for (std::size_t k = 0; k < n; ++k) {
    aeff[k] = r.aeff(grid[k]);
    containment[k] = r.psf_containment(grid[k], theta_max);
  }
  std::vector<double> cell_bound(n - 1);
  for (std::size_t j = 0; j + 1 < n; ++j) {
    cell_bound[j] = bound_margin * std::max(aeff[j], aeff[j + 1]) *
                    std::max({1.0, containment[j], containment[j + 1]});
  }
  std::vector<double> out(n);
  for (std::size_t k = 0; k < n; ++k) {
    const double left = k > 0 ? cell_bound[k - 1] : 0.0;
    const double right = k + 1 < n ? cell_bound[k] : 0.0;
    out[k] = log_or_minus_inf(std::max(left, right));
  }
  return out;
}

TrialChannel make_channel(TrialObservation observation, const FitSettings& s, double n0,
                          double gamma, double beta) {
  TrialChannel c(std::move(observation));
  const ObservationResponse& r = c.response;
  const double t2 = s.theta_max * s.theta_max;
  const double source_integral = simpson_log(
      [&](double e) { return std::pow(e, -gamma) * r.aeff(e) * r.psf_containment(e, s.theta_max); },
      s.emin, s.emax);
  const double bkg_integral =
      simpson_log([&](double e) { return r.bkg_rate_per_livetime(e); }, s.emin, s.emax);
  c.expected_source = c.livetime * n0 * source_integral;
  c.expected_background = c.livetime * beta * std::numbers::pi * t2 * bkg_integral;

  const std::vector<double> grid = sampling_grid(r, s.emin, s.emax);
  c.log_envelope = log_envelope(r, grid, s.theta_max);
  const std::size_t n = grid.size();
  c.log_energy.resize(n);
  std::vector<double> source(n);
  std::vector<double> background(n);
  for (std::size_t k = 0; k < n; ++k) {
    const double u = std::log(grid[k]);  // ln(E / 1 TeV); the + u terms are the Jacobian E
    c.log_energy[k] = u;
    source[k] = (1.0 - gamma) * u + c.log_envelope[k];
    background[k] = u + log_or_minus_inf(r.bkg_rate_per_livetime(grid[k]));
  }
  c.source_envelope = science::detail::LogLogSpectrum(grid, std::move(source));
  c.background = science::detail::LogLogSpectrum(grid, std::move(background));
  // Simpson's nodes are grid points: a positive integral means a live envelope cell.
  if ((c.expected_source > 0.0 && !(c.source_envelope.total() > 0.0)) ||
      (c.expected_background > 0.0 && !(c.background.total() > 0.0))) {
    throw InternalError("RoiSimulator: expected counts without a sampling density");
  }
  return c;
}

double draw_source_energy(const TrialChannel& c, double theta_max, RngStream& rng) {
  for (;;) {
    const double e = c.source_envelope.sample(rng.uniform());
    const double accept = rng.uniform() * c.envelope(e);
    if (accept < c.response.aeff(e) * c.response.psf_containment(e, theta_max)) return e;
  }
}

// Uniform in the disc, proposed as theta_max sqrt(u); sqrt may round the top uniform to 1,
// outside the open disc: such a proposal is drawn again.
double draw_in_disc(double theta_max, RngStream& rng) {
  for (;;) {
    const double theta = theta_max * std::sqrt(rng.uniform());
    if (theta < theta_max) return theta;
  }
}

// Flat-sky density 2 pi theta psf_density(E, theta) on [0, theta_max): uniform proposals in
// the disc accepted with probability psf_density / peak. The acceptance is
// Fpsf / (pi theta_max^2 peak), 2 sigma^2 Fpsf / theta_max^2 for one Gaussian (0.1 for
// sigma = 0.05 deg within 0.2 deg).
double draw_source_theta(const ObservationResponse& r, double energy, double theta_max,
                         RngStream& rng) {
  const double peak = bound_margin * r.psf_peak_density(energy);
  for (;;) {
    const double theta = draw_in_disc(theta_max, rng);
    if (rng.uniform() * peak < r.psf_density(energy, theta)) return theta;
  }
}

RoiEvents draw_part(const TrialChannel& c, double theta_max, RngStream& rng) {
  const std::uint64_t n_source = rng.poisson(c.expected_source);
  const std::uint64_t n_background = rng.poisson(c.expected_background);
  RoiEvents part;
  part.livetime = c.livetime;
  part.energy.reserve(n_source + n_background);
  part.theta.reserve(n_source + n_background);
  for (std::uint64_t i = 0; i < n_source; ++i) {
    const double e = draw_source_energy(c, theta_max, rng);
    part.energy.push_back(e);
    part.theta.push_back(draw_source_theta(c.response, e, theta_max, rng));
  }
  for (std::uint64_t i = 0; i < n_background; ++i) {
    part.energy.push_back(c.background.sample(rng.uniform()));
    part.theta.push_back(draw_in_disc(theta_max, rng));
  }
  return part;
}

}  // namespace

RoiSimulator::RoiSimulator(std::vector<TrialObservation> observations, const FitSettings& settings,
                           double n0, double gamma, double beta) {
  const FitSettings& s = settings;
  require(std::isfinite(n0) && n0 >= 0.0, "N0", n0, "must be finite and >= 0");
  require(std::isfinite(gamma), "gamma", gamma, "must be finite");
  require(std::isfinite(beta) && beta >= 0.0, "beta", beta, "must be finite and >= 0");
  require(std::isfinite(s.emin) && s.emin > 0.0, "emin", s.emin, "TeV must be finite and > 0");
  require(std::isfinite(s.emax) && s.emax > s.emin, "emax", s.emax,
          "TeV must be finite and > emin");
  require(s.theta_max > 0.0 && s.theta_max < 180.0, "theta_max", s.theta_max,
          "deg must be in (0, 180)");
  for (std::size_t o = 0; o < observations.size(); ++o) {
    const double t = observations[o].livetime;
    require(std::isfinite(t) && t >= 0.0, fmt::format("observation {}: livetime", o), t,
            "s must be finite and >= 0");
  }
  auto tables = std::make_shared<detail::TrialTables>();
  tables->theta_max = s.theta_max;
  tables->channels.reserve(observations.size());
  for (TrialObservation& o : observations) {
    tables->channels.push_back(make_channel(std::move(o), s, n0, gamma, beta));
  }
  tables_ = std::move(tables);
}

std::size_t RoiSimulator::observations() const { return tables_->channels.size(); }

std::pair<double, double> RoiSimulator::expected(std::size_t o) const {
  const TrialChannel& c = tables_->channels.at(o);
  return {c.expected_source, c.expected_background};
}

RoiEvents RoiSimulator::draw(RngStream& rng) const {
  RoiEvents events;
  for (std::size_t o = 0; o < tables_->channels.size(); ++o) {
    events.append_part(o, draw_part(tables_->channels[o], tables_->theta_max, rng));
  }
  return events;
}

}  // namespace binflow::science::dl3
