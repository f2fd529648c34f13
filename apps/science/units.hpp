#pragma once
// Physical units of FITS columns (TUNITn) and keywords, as GADF files write them, converted
// to binflow's units (SCIENCE.md: TeV, deg, s, cm). A unit string is parsed into a scale
// factor and the powers of four dimensions, in every spelling the FITS standard (section
// 4.3), OGIP and astropy's writers produce: "MeV-1 s-1 sr-1", "1 / (MeV s sr)",
// "s^-1 MeV^-1 sr^-1", "m**2", "cm2", "deg-2".
#include <optional>
#include <string>
#include <string_view>

namespace binflow::science::units {

/// Powers of the base dimensions of a unit.
struct Dimension {
  int energy = 0;
  int angle = 0;  ///< a solid angle is angle^2 (sr = rad^2)
  int time = 0;
  int length = 0;
  friend bool operator==(const Dimension&, const Dimension&) = default;
};

/// A parsed unit: value_in_binflow_units = value_in_unit * factor.
struct Unit {
  double factor = 1.0;
  Dimension dimension;
};

/// Parses `text`; std::nullopt when it is not a unit this parser knows. Known: eV keV MeV
/// GeV TeV PeV erg, deg rad arcmin arcsec sr, s ms min h d, m cm mm, ct (a number) and
/// integers; products by blank, '*' or '.', division by '/', parentheses, powers as "2",
/// "-1", "^-1", "**-1", "**(-1)". Names are case-sensitive (MeV is not meV). "" is
/// dimensionless.
[[nodiscard]] std::optional<Unit> parse(std::string_view text);

/// The quantities binflow reads from GADF files, each with its binflow unit.
enum class Quantity {
  dimensionless,
  energy,           ///< TeV
  angle,            ///< deg
  time,             ///< s
  area,             ///< cm^2
  per_solid_angle,  ///< deg^-2 (PSF densities)
  background_rate,  ///< s^-1 TeV^-1 deg^-2
};

/// The binflow unit of `quantity` and what a file may use for it (for messages):
/// "TeV (TeV, GeV, MeV, ...)".
[[nodiscard]] std::string describe(Quantity quantity);

/// The factor converting `text` to the binflow unit of `quantity`, or std::nullopt if the
/// unit is unknown or has another dimension.
[[nodiscard]] std::optional<double> factor(std::string_view text, Quantity quantity);

/// As factor(), but UsageError "<where>: unit 'xyz' is not <describe>" (or "has no unit,
/// expected ...") naming `where` (e.g. "obs.fits[EVENTS] ENERGY"). An empty unit is
/// accepted only for Quantity::dimensionless.
[[nodiscard]] double require_factor(std::string_view text, Quantity quantity,
                                    const std::string& where);

}  // namespace binflow::science::units
