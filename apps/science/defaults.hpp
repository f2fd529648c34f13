#pragma once
// The defaults of SCIENCE.md (section 4, "the default source and instrument"), in one
// place: the observation's pointing, the simulated source, and the analysis. Tools'
// parameters, the science structs and the tests take them from here.
namespace binflow::science::defaults {

inline constexpr double ra = 83.6331;  ///< source position and pointing (the Crab), deg
inline constexpr double dec = 22.0145;
inline constexpr double n0 = 3.5e-11;  ///< source flux at 1 TeV, ph cm^-2 s^-1 TeV^-1
inline constexpr double gamma = 2.5;   ///< power-law index (true and gamma_ref)
inline constexpr double beta = 1.0;    ///< background normalisation
inline constexpr double emin = 0.1;    ///< analysis energy range, TeV
inline constexpr double emax = 100.0;
inline constexpr double theta_max = 0.2;    ///< radius of the region of interest, deg
inline constexpr double theta_sim = 0.3;    ///< radius of the simulated background cap, deg
inline constexpr double confidence = 0.95;  ///< of upper limits
inline constexpr double gamma_min = -1.0;   ///< range of the fitted index
inline constexpr double gamma_max = 6.0;

}  // namespace binflow::science::defaults
