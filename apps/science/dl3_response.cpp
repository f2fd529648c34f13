#include "science/dl3_response.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <tuple>
#include <utility>

#include <fmt/format.h>

#include "binflow/error.hpp"
#include "science/geometry.hpp"

namespace binflow::science::dl3 {

namespace {

constexpr double deg = std::numbers::pi / 180.0;

// Linear interpolation weights between nodes, as scipy's RegularGridInterpolator (Gammapy's
// engine) computes them: the cell is the one below x (the first or last cell outside the
// nodes, which extrapolates), value = (1 - w) v[lo] + w v[lo + 1]. An axis of one node is
// constant (Gammapy leaves such axes out of the interpolation).
struct Bracket {
  std::size_t lo = 0;
  double w = 0.0;
};

Bracket bracket(const std::vector<double>& nodes, double x) {
  const std::size_t n = nodes.size();
  if (n < 2) return {};
  const auto it = std::lower_bound(nodes.begin(), nodes.end(), x);
  const std::size_t above = static_cast<std::size_t>(it - nodes.begin());
  const std::size_t lo = std::clamp<std::size_t>(above == 0 ? 0 : above - 1, 0, n - 2);
  return {lo, (x - nodes[lo]) / (nodes[lo + 1] - nodes[lo])};
}

double blend(const std::vector<double>& v, std::size_t stride, std::size_t base, const Bracket& b,
             std::size_t n) {
  if (n < 2) return v[base];
  return (1.0 - b.w) * v[base + b.lo * stride] + b.w * v[base + (b.lo + 1) * stride];
}

// The table with axis `a` fixed at `x` (in the axis's own unit) and removed: linear in the
// values as given (already in their interpolation scale).
IrfTable fix_axis(const IrfTable& table, std::size_t a, double x) {
  const IrfAxis& axis = table.axes[a];
  const Bracket b = bracket(axis.nodes, axis.scaled(x));
  std::size_t inner = 1;  // product of the sizes of the faster axes
  for (std::size_t k = 0; k < a; ++k) inner *= table.axes[k].size();
  const std::size_t n = axis.size();
  const std::size_t outer = table.values.size() / (inner * n);
  IrfTable out;
  for (std::size_t k = 0; k < table.axes.size(); ++k) {
    if (k != a) out.axes.push_back(table.axes[k]);
  }
  out.values.resize(inner * outer);
  for (std::size_t o = 0; o < outer; ++o) {
    for (std::size_t i = 0; i < inner; ++i) {
      out.values[i + inner * o] = blend(table.values, inner, i + inner * n * o, b, n);
    }
  }
  return out;
}

IrfTable log_values(IrfTable table, double floor) {
  for (double& v : table.values) v = std::log(std::max(v, floor));
  return table;
}

// Int_a^b max(0, alpha + beta t) t dt for a <= b: the containment of a linear piece of the
// profile, exact (the clip at 0 is Gammapy's, after interpolation).
double positive_moment(double a, double b, double alpha, double beta) {
  if (!(b > a)) return 0.0;
  double u = a;
  double v = b;
  if (beta == 0.0) {
    if (alpha <= 0.0) return 0.0;
  } else {
    const double root = -alpha / beta;
    if (beta > 0.0) {
      u = std::max(a, root);
    } else {
      v = std::min(b, root);
    }
    if (!(v > u)) return 0.0;
  }
  return alpha * (v * v - u * u) / 2.0 + beta * (v * v * v - u * u * u) / 3.0;
}

// Gammapy's SkyOffsetFrame coordinates (lon, lat) of (ra, dec) about (ra0, dec0), deg.
std::pair<double, double> offset_frame(double ra, double dec, double ra0, double dec0) {
  const double dra = (ra - ra0) * deg;
  const double x = std::cos(dec * deg) * std::cos(dra);
  const double y = std::cos(dec * deg) * std::sin(dra);
  const double z = std::sin(dec * deg);
  const double xr = std::cos(dec0 * deg) * x + std::sin(dec0 * deg) * z;
  const double zr = -std::sin(dec0 * deg) * x + std::cos(dec0 * deg) * z;
  return {std::atan2(y, xr) / deg, std::atan2(zr, std::hypot(xr, y)) / deg};
}

}  // namespace

double ObservationResponse::Curve::operator()(double energy) const {
  if (!defined) return 0.0;
  if (clamp) {
    energy = axis.clamp(energy);
  } else if (!axis.contains(energy)) {
    return 0.0;
  }
  const Bracket b = bracket(axis.nodes, axis.scaled(energy));
  const double v = blend(values, 1, 0, b, axis.size());
  return std::max(0.0, log_values ? std::exp(v) : v);
}

ObservationResponse::ObservationResponse(const Observation& observation, double ra, double dec)
    : ObservationResponse(observation.irf, observation.ra_pnt, observation.dec_pnt, ra, dec,
                          observation.livetime_fraction()) {}

ObservationResponse::ObservationResponse(const IrfSet& irf, double ra_pnt, double dec_pnt,
                                         double ra, double dec, double livetime_fraction)
    : offset_(angular_distance(ra, dec, ra_pnt, dec_pnt)), livetime_fraction_(livetime_fraction) {
  if (!irf.aeff || !irf.psf || !irf.bkg) {
    throw InternalError("ObservationResponse: the response is incomplete");
  }
  if (!(livetime_fraction > 0.0 && livetime_fraction <= 1.0)) {
    throw UsageError(fmt::format("livetime fraction {} is not in (0, 1]", livetime_fraction));
  }
  std::tie(fov_lon_, fov_lat_) = offset_frame(ra, dec, ra_pnt, dec_pnt);

  // Effective area at the offset: 0 when the offset is beyond the table.
  const IrfTable& aeff = irf.aeff->table;
  aeff_.axis = aeff.axes[0];
  aeff_.defined = aeff.axes[1].contains(offset_);
  aeff_.values = fix_axis(aeff, 1, offset_).values;

  const Background& bkg = *irf.bkg;
  IrfTable bkg_table = log_values(bkg.table, bkg.floor);
  if (bkg.irf_class == IrfClass::bkg_2d) {
    bkg_.defined = bkg_table.axes[1].contains(offset_);
    bkg_table = fix_axis(bkg_table, 1, offset_);
  } else {
    bkg_.defined = bkg_table.axes[1].contains(fov_lon_) && bkg_table.axes[2].contains(fov_lat_);
    bkg_table = fix_axis(fix_axis(bkg_table, 2, fov_lat_), 1, fov_lon_);
  }
  bkg_.axis = bkg_table.axes[0];
  bkg_.values = std::move(bkg_table.values);
  bkg_.log_values = true;

  if (const auto* gauss = std::get_if<Psf3Gauss>(&irf.psf->model)) {
    const auto curve = [&](const IrfTable& t) {
      Curve c;
      c.axis = t.axes[0];
      c.values = fix_axis(t, 1, t.axes[1].clamp(offset_)).values;
      c.clamp = true;
      c.defined = true;
      return c;
    };
    gauss_ = {curve(gauss->sigma_1), curve(gauss->sigma_2), curve(gauss->sigma_3),
              curve(gauss->scale),   curve(gauss->ampl_2),  curve(gauss->ampl_3)};
  } else {
    const IrfTable& rpsf = std::get<PsfTable>(irf.psf->model).rpsf;
    IrfTable at_offset = fix_axis(rpsf, 1, rpsf.axes[1].clamp(offset_));
    psf_is_table_ = true;
    table_.energy = at_offset.axes[0];
    table_.rad = at_offset.axes[1];
    table_.values = std::move(at_offset.values);
  }
}

double ObservationResponse::aeff(double energy) const { return aeff_(energy); }

double ObservationResponse::bkg_rate(double energy) const { return bkg_(energy); }

ObservationResponse::GaussTerms ObservationResponse::gauss_terms(double energy) const {
  // Gammapy's MultiGauss2D with norms 2 SCALE AMPL_k SIGMA_k^2 (AMPL_1 = 1), normalised. The
  // six parameters share the HDU's energy axis: one bracket for all.
  const IrfAxis& axis = gauss_.sigma_1.axis;
  const Bracket b = bracket(axis.nodes, axis.scaled(axis.clamp(energy)));
  const auto at = [&](const Curve& c) {
    return std::max(0.0, blend(c.values, 1, 0, b, axis.size()));
  };
  GaussTerms terms;
  const double scale = at(gauss_.scale);
  terms.sigma = {at(gauss_.sigma_1), at(gauss_.sigma_2), at(gauss_.sigma_3)};
  const std::array<double, 3> ampl = {1.0, at(gauss_.ampl_2), at(gauss_.ampl_3)};
  double total = 0.0;
  for (std::size_t k = 0; k < 3; ++k) {
    terms.weight[k] = 2.0 * scale * ampl[k] * terms.sigma[k] * terms.sigma[k];
    total += terms.weight[k];
  }
  for (double& w : terms.weight) w = total > 0.0 ? w / total : 0.0;
  return terms;
}

std::vector<double> ObservationResponse::radial_profile(double energy) const {
  const IrfAxis& e = table_.energy;
  const Bracket b = bracket(e.nodes, e.scaled(e.clamp(energy)));
  const std::size_t ne = e.size();
  std::vector<double> profile(table_.rad.size());
  for (std::size_t k = 0; k < profile.size(); ++k) {
    profile[k] = blend(table_.values, 1, k * ne, b, ne);
  }
  return profile;
}

double ObservationResponse::psf_density(double energy, double theta) const {
  if (!psf_is_table_) {
    const GaussTerms t = gauss_terms(energy);
    double density = 0.0;
    for (std::size_t k = 0; k < 3; ++k) {
      if (t.weight[k] == 0.0) continue;
      const double s2 = t.sigma[k] * t.sigma[k];
      density += t.weight[k] / (2.0 * std::numbers::pi * s2) * std::exp(-0.5 * theta * theta / s2);
    }
    return density;
  }
  if (!table_.rad.contains(theta)) return 0.0;
  // Bilinear in (ln E, theta): the two RAD nodes around theta, each at the energy.
  const IrfAxis& e = table_.energy;
  const Bracket be = bracket(e.nodes, e.scaled(e.clamp(energy)));
  const std::size_t ne = e.size();
  const std::size_t nr = table_.rad.size();
  if (nr < 2) return std::max(0.0, blend(table_.values, 1, 0, be, ne));
  const Bracket br = bracket(table_.rad.nodes, theta);
  const double lo = blend(table_.values, 1, br.lo * ne, be, ne);
  const double hi = blend(table_.values, 1, (br.lo + 1) * ne, be, ne);
  return std::max(0.0, (1.0 - br.w) * lo + br.w * hi);
}

double ObservationResponse::psf_containment(double energy, double theta_max) const {
  if (!psf_is_table_) {
    const GaussTerms t = gauss_terms(energy);
    double fraction = 0.0;
    for (std::size_t k = 0; k < 3; ++k) {
      if (t.weight[k] == 0.0) continue;
      fraction -=
          t.weight[k] * std::expm1(-0.5 * theta_max * theta_max / (t.sigma[k] * t.sigma[k]));
    }
    return fraction;
  }
  // The profile is linear between RAD centres (extrapolated to the first and last edge) and
  // 0 beyond the edges: integrate each linear piece exactly.
  const std::vector<double>& c = table_.rad.nodes;
  const std::vector<double>& edges = table_.rad.edges;
  const std::vector<double> p = radial_profile(energy);
  const double top = std::min(theta_max, edges.back());
  const std::size_t n = c.size();
  double moment = 0.0;
  if (n == 1) {
    moment = positive_moment(edges.front(), top, p[0], 0.0);
  } else {
    for (std::size_t j = 0; j + 1 < n; ++j) {
      const double lo = j == 0 ? edges.front() : c[j];
      const double hi = std::min(top, j + 2 == n ? edges.back() : c[j + 1]);
      if (!(hi > lo)) continue;
      const double beta = (p[j + 1] - p[j]) / (c[j + 1] - c[j]);
      moment += positive_moment(lo, hi, p[j] - beta * c[j], beta);
    }
  }
  return 2.0 * std::numbers::pi * moment;
}

double ObservationResponse::psf_peak_density(double energy) const {
  if (!psf_is_table_) return psf_density(energy, 0.0);  // every Gaussian peaks at theta = 0
  const std::vector<double> p = radial_profile(energy);
  double peak = *std::max_element(p.begin(), p.end());
  const std::vector<double>& c = table_.rad.nodes;
  const std::size_t n = c.size();
  if (n >= 2) {
    // The outer cells extrapolate linearly to the edges, where they may rise above any node.
    const std::vector<double>& edges = table_.rad.edges;
    const double first = p[0] + (p[1] - p[0]) / (c[1] - c[0]) * (edges.front() - c[0]);
    const double last =
        p[n - 1] + (p[n - 1] - p[n - 2]) / (c[n - 1] - c[n - 2]) * (edges.back() - c[n - 1]);
    peak = std::max({peak, first, last});
  }
  return std::max(0.0, peak);
}

std::vector<double> ObservationResponse::energy_knots() const {
  std::vector<const IrfAxis*> axes = {&aeff_.axis, &bkg_.axis};
  axes.push_back(psf_is_table_ ? &table_.energy : &gauss_.sigma_1.axis);
  std::vector<double> knots;
  for (const IrfAxis* axis : axes) {
    knots.insert(knots.end(), axis->edges.begin(), axis->edges.end());
    for (const double node : axis->nodes) knots.push_back(axis->log ? std::exp(node) : node);
  }
  std::sort(knots.begin(), knots.end());
  knots.erase(std::unique(knots.begin(), knots.end()), knots.end());
  return knots;
}

ResponseTable ObservationResponse::tabulate(const std::vector<double>& energy,
                                            double theta_max) const {
  ResponseTable table;
  table.energy = energy;
  table.theta_max = theta_max;
  for (const double e : energy) {
    table.aeff.push_back(aeff(e));
    table.psf_containment.push_back(psf_containment(e, theta_max));
    table.bkg_rate.push_back(bkg_rate_per_livetime(e));
  }
  return table;
}

}  // namespace binflow::science::dl3
