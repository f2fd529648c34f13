#pragma once
// Response tables of GADF DL3 files (SCIENCE.md section 7): the aeff_2d, psf_3gauss,
// psf_table, bkg_2d and bkg_3d HDUs read into small in-memory tables in binflow units,
// validated once. Evaluating them at a source position is dl3_response.hpp's job.
//
// A GADF response HDU is a binary table of one row whose cells are arrays: per axis a
// <AXIS>_LO and <AXIS>_HI column (the bin edges) and one data cell over all axes. The data
// cell's axes are in the order of the axis columns in the table, the first one fastest
// (TDIM "(nE,nTheta)" for ENERG_*, THETA_* columns): what Gammapy writes and GammaLib's
// response tables read; the TDIM is checked against that order.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "science/fits.hpp"

namespace binflow::science::dl3 {

/// One axis of a response table, in binflow units (TeV, deg).
struct IrfAxis {
  std::string name;  ///< column prefix: ENERG, THETA, RAD, DETX or DETY
  bool log = false;  ///< interpolated in ln x (energy axes) or linearly
  /// size() + 1 increasing bin edges (Gammapy's: every <AXIS>_LO and the last _HI).
  std::vector<double> edges;
  /// The interpolation nodes, in the interpolation scale (ln x for log axes): the bin
  /// centres, geometric for log axes (Gammapy's MapAxis.center).
  std::vector<double> nodes;

  [[nodiscard]] std::size_t size() const { return nodes.size(); }
  /// x in the interpolation scale.
  [[nodiscard]] double scaled(double x) const;
  /// Whether x is within [edges.front(), edges.back()]; on a log axis a point within 1e-12
  /// (relative, in ln x) of an end counts as inside, as in SCIENCE.md section 1.
  [[nodiscard]] bool contains(double x) const;
  /// x moved into [edges.front(), edges.back()].
  [[nodiscard]] double clamp(double x) const;
};

/// Values on a grid of axes, the first axis fastest: values[i0 + n0 * (i1 + n1 * i2)].
struct IrfTable {
  std::vector<IrfAxis> axes;
  std::vector<double> values;
};

/// The response HDU classes binflow knows (HDUCLAS4, lower case, as Gammapy's HDU_CLASS).
enum class IrfClass {
  aeff_2d,
  psf_3gauss,
  psf_table,
  psf_king,
  bkg_2d,
  bkg_3d,
  edisp_2d,
  rad_max_2d,
};
/// "aeff_2d", ...
[[nodiscard]] std::string_view to_string(IrfClass irf_class);
/// The class named `name` (case-insensitive), if binflow knows it.
[[nodiscard]] std::optional<IrfClass> irf_class_from_string(std::string_view name);

/// aeff_2d: EFFAREA over true energy (ENERG, TeV) x offset (THETA, deg), cm^2.
struct EffectiveArea {
  std::string source;  ///< "file[HDU]", for messages
  IrfTable table;
  /// LO_THRES / HI_THRES of the header (TeV), the instrument team's safe range when given.
  std::optional<double> lo_threshold;
  std::optional<double> hi_threshold;
};

/// psf_3gauss: the GADF sum of three 2-D Gaussians, each parameter over true energy x
/// offset. sigma_* in deg; scale as in the file (it cancels in the normalised sum); ampl_*
/// dimensionless. Zero sigmas read as 1 in the file's unit, as Gammapy does ("files where
/// sigma is written as zero"): they belong to components of zero amplitude.
struct Psf3Gauss {
  IrfTable sigma_1, sigma_2, sigma_3, scale, ampl_2, ampl_3;
};

/// psf_table: RPSF over true energy x offset x RAD (deg), converted to deg^-2.
struct PsfTable {
  IrfTable rpsf;
};

struct Psf {
  std::string source;
  std::variant<Psf3Gauss, PsfTable> model;
};

/// bkg_2d (BKG over reconstructed energy x offset) or bkg_3d (over reconstructed energy x
/// DETX x DETY, FOVALIGN=RADEC), in s^-1 TeV^-1 deg^-2 per second of ontime.
struct Background {
  std::string source;
  IrfClass irf_class = IrfClass::bkg_2d;
  IrfTable table;
  /// Gammapy interpolates ln BKG with BKG clipped below at the smallest normal float32
  /// (1.18e-38 in the file's unit): that floor, converted.
  double floor = 0.0;
};

/// Readers of the current HDU of `file` (a table of the given class). UsageError, one line
/// naming file[HDU] and the column or keyword, for: a missing column, not one row, an axis
/// that is not finite and increasing (positive energies, offsets and radii >= 0), a data
/// cell whose TDIM does not match the axes, values not finite or negative, and a unit
/// (TUNITn) that is missing or unknown or of the wrong dimension.
[[nodiscard]] EffectiveArea read_effective_area(fits::File& file);
/// `irf_class` is psf_3gauss or psf_table.
[[nodiscard]] Psf read_psf(fits::File& file, IrfClass irf_class);
/// `irf_class` is bkg_2d or bkg_3d; a bkg_3d whose FOVALIGN is not RADEC (ALTAZ) is bad
/// input; one without FOVALIGN is taken as RADEC, as Gammapy 1.0 does, and `fovalign_assumed`
/// (if given) is set.
[[nodiscard]] Background read_background(fits::File& file, IrfClass irf_class,
                                         bool* fovalign_assumed = nullptr);

/// The response of one observation: shared, because many observations of an index often
/// name the same response HDU (read once).
struct IrfSet {
  std::shared_ptr<const EffectiveArea> aeff;
  std::shared_ptr<const Psf> psf;
  std::shared_ptr<const Background> bkg;
};

}  // namespace binflow::science::dl3
