#pragma once
// The response of one DL3 observation for a point source (SCIENCE.md section 7): the
// effective area, the PSF and the background at the source's offset from the pointing,
// as functions of energy (and of the angle to the source for the PSF).
//
// Interpolation is Gammapy 1.0's (gammapy.irf.IRF.evaluate, ScaledRegularGridInterpolator):
// multilinear between bin centres, in ln E along energy axes (centres geometric) and linear
// along offset, DETX/DETY and RAD; linear in the value for EFFAREA, RPSF and the 3-Gaussian
// parameters, in ln BKG for the background; linear extrapolation between the outermost
// centre and the bin edge; results clipped at 0. Outside the outermost bin edges aeff,
// RPSF (in RAD) and BKG are 0, as in Gammapy; the PSF's energy and offset are held at the
// nearest edge instead (Gammapy extrapolates the 3-Gaussian parameters without bound and
// gives RPSF 0): the PSF stays a density where aeff is 0 anyway. See docs/science.md,
// "DL3 input".
#include <array>
#include <vector>

#include "science/dl3.hpp"
#include "science/dl3_irf.hpp"

namespace binflow::science::dl3 {

/// A response tabulated on an energy grid: what the likelihood's Simpson nodes need (the
/// DL3 counterpart of IrfTables).
struct ResponseTable {
  std::vector<double> energy;           ///< TeV
  std::vector<double> aeff;             ///< cm^2
  std::vector<double> psf_containment;  ///< within theta_max
  std::vector<double> bkg_rate;         ///< s^-1 TeV^-1 deg^-2 per second of livetime
  double theta_max = 0.0;               ///< deg
};

/// The response of one observation at one source position, evaluated at the source's
/// offset from the pointing (fixed for the observation: the pointing does not move). Built
/// once per (observation, source) in O(size of the tables); immutable and thread-safe.
class ObservationResponse {
public:
  /// For a point source at (ra, dec), deg.
  ObservationResponse(const Observation& observation, double ra, double dec);
  /// From the parts: the response tables, the pointing, the source, LIVETIME / ONTIME.
  ObservationResponse(const IrfSet& irf, double ra_pnt, double dec_pnt, double ra, double dec,
                      double livetime_fraction);

  /// Angular distance of the source from the pointing, deg.
  [[nodiscard]] double offset() const { return offset_; }
  /// The source's field-of-view coordinates (RADEC-aligned, Gammapy's SkyOffsetFrame lon/lat
  /// about the pointing), deg: where a bkg_3d is evaluated.
  [[nodiscard]] double fov_lon() const { return fov_lon_; }
  [[nodiscard]] double fov_lat() const { return fov_lat_; }
  /// Whether the offset lies within the effective area's offset axis (else aeff is 0).
  [[nodiscard]] bool in_field_of_view() const { return aeff_.defined; }
  [[nodiscard]] double livetime_fraction() const { return livetime_fraction_; }

  /// Effective area at true energy `energy` (TeV), cm^2.
  [[nodiscard]] double aeff(double energy) const;
  /// PSF density at angle `theta` (deg) from the source, deg^-2 (the per-event term
  /// exp(-theta^2/2sigma^2)/(2 pi sigma^2) of SCIENCE.md section 2 becomes this).
  [[nodiscard]] double psf_density(double energy, double theta) const;
  /// Fraction of the PSF within theta_max (deg): 2 pi Int_0^theta_max psf_density theta dtheta
  /// (flat sky, as the density is per deg^2): closed form for the 3 Gaussians, the exact
  /// integral of the interpolated (piecewise linear) profile for a table.
  [[nodiscard]] double psf_containment(double energy, double theta_max) const;
  /// The largest PSF density at `energy` over all angles, deg^-2: the density at theta = 0
  /// for the 3 Gaussians; for a table the largest value of the piecewise linear profile,
  /// which is at a RAD node or at an edge of the RAD axis (the linear extrapolation of the
  /// outer cells). The bound a rejection sampler of theta needs (dl3_simulate.hpp).
  [[nodiscard]] double psf_peak_density(double energy) const;
  /// Background rate at reconstructed energy `energy`, s^-1 TeV^-1 deg^-2 per second of
  /// ontime: BKG as in the file (GADF, Gammapy), converted.
  [[nodiscard]] double bkg_rate(double energy) const;
  /// bkg_rate / livetime_fraction: per second of livetime, the b(E) of SCIENCE.md section 7
  /// (the likelihood's time is livetime).
  [[nodiscard]] double bkg_rate_per_livetime(double energy) const {
    return bkg_rate(energy) / livetime_fraction_;
  }

  /// The energies (TeV, increasing, distinct) where the energy dependence changes form: the
  /// nodes and edges of the energy axes of the effective area, the PSF and the background.
  /// Between two consecutive knots aeff is linear in ln E (clipped at 0), ln bkg_rate is
  /// linear in ln E, and so are the PSF parameters or the table's profile at every RAD node:
  /// what an exact sampler needs to bound aeff and the containment (dl3_simulate.hpp).
  [[nodiscard]] std::vector<double> energy_knots() const;

  /// aeff, psf_containment(theta_max) and bkg_rate_per_livetime at each energy.
  [[nodiscard]] ResponseTable tabulate(const std::vector<double>& energy, double theta_max) const;

private:
  // A function of energy: the tables with every other axis fixed at the source.
  struct Curve {
    IrfAxis axis;
    std::vector<double> values;  // in the value scale (ln for log_values)
    bool log_values = false;
    bool clamp = false;    // hold the energy at the nearest edge (else 0 outside the edges)
    bool defined = false;  // false: the source is outside another axis; the curve is 0
    [[nodiscard]] double operator()(double energy) const;
  };
  struct Gauss3 {
    Curve sigma_1, sigma_2, sigma_3, scale, ampl_2, ampl_3;
  };
  // A psf_table at the source's offset: RPSF over (energy, RAD), energy fastest.
  struct RadialTable {
    IrfAxis energy;
    IrfAxis rad;
    std::vector<double> values;
  };
  struct GaussTerms {
    std::array<double, 3> weight{};  // normalised: the weights sum to 1 (or all 0)
    std::array<double, 3> sigma{};   // deg
  };
  [[nodiscard]] GaussTerms gauss_terms(double energy) const;
  [[nodiscard]] std::vector<double> radial_profile(double energy) const;

  double offset_ = 0.0;
  double fov_lon_ = 0.0;
  double fov_lat_ = 0.0;
  double livetime_fraction_ = 1.0;
  Curve aeff_;
  Curve bkg_;
  bool psf_is_table_ = false;
  Gauss3 gauss_;
  RadialTable table_;
};

}  // namespace binflow::science::dl3
