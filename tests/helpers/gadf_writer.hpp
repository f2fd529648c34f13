#pragma once
// Small GADF DL3 files written with the fits wrapper from a Spec that can plant every defect:
// an EVENTS and a GTI HDU, then (with_irf) the effective area, the PSF (3-Gaussian or table),
// the background (2-D or 3-D) and optionally an energy dispersion. Used by tests/unit/dl3_test.cpp
// and by the DL3 fuzz target (fuzz/fuzz_dl3_file.cpp).
#include <cmath>
#include <cstdint>
#include <numbers>
#include <optional>
#include <string>
#include <vector>

#include "science/fits.hpp"

namespace binflow::testing_support::gadf {

using binflow::fits::File;
inline constexpr double pi = std::numbers::pi;
inline constexpr double sr_to_deg2 = (180.0 / pi) * (180.0 / pi);

struct Axis {
  std::string prefix;
  std::vector<double> edges;
  std::string unit;
};

struct DataColumn {
  std::string name;
  std::vector<double> values;  // first axis fastest
  std::string unit;
};

inline std::vector<double> geometric_edges(double lo, double hi, int n) {
  std::vector<double> e;
  for (int i = 0; i <= n; ++i) e.push_back(lo * std::pow(hi / lo, static_cast<double>(i) / n));
  return e;
}

inline std::vector<double> linear_edges(double lo, double hi, int n) {
  std::vector<double> e;
  for (int i = 0; i <= n; ++i) e.push_back(lo + (hi - lo) * i / n);
  return e;
}

// One GADF response HDU: one row, <AXIS>_LO/_HI cells and data cells over the axes.
inline void write_irf(File& f, const std::string& extname, const std::string& class2,
               const std::string& class4, const std::vector<Axis>& axes,
               const std::vector<DataColumn>& data,
               const std::optional<std::vector<std::int64_t>>& tdim = std::nullopt) {
  std::vector<binflow::fits::ColumnSpec> specs;
  std::int64_t cells = 1;
  std::vector<std::int64_t> dims;
  for (const Axis& a : axes) {
    const auto n = static_cast<std::int64_t>(a.edges.size()) - 1;
    specs.push_back({a.prefix + "_LO", std::to_string(n) + "D", a.unit});
    specs.push_back({a.prefix + "_HI", std::to_string(n) + "D", a.unit});
    cells *= n;
    dims.push_back(n);
  }
  for (const DataColumn& d : data) specs.push_back({d.name, std::to_string(cells) + "D", d.unit});
  f.create_table(extname, specs, 1);
  for (const Axis& a : axes) {
    f.write_column(a.prefix + "_LO", std::vector<double>(a.edges.begin(), a.edges.end() - 1));
    f.write_column(a.prefix + "_HI", std::vector<double>(a.edges.begin() + 1, a.edges.end()));
  }
  for (const DataColumn& d : data) {
    f.write_column(d.name, d.values);
    f.write_tdim(d.name, tdim.value_or(dims));
  }
  f.write_key("HDUCLASS", std::string("GADF"));
  f.write_key("HDUCLAS1", std::string("RESPONSE"));
  f.write_key("HDUCLAS2", class2);
  f.write_key("HDUCLAS3", std::string("FULL-ENCLOSURE"));
  f.write_key("HDUCLAS4", class4);
}

// What goes into a test observation; every field can be spoilt.
struct Spec {
  std::optional<std::int64_t> obs_id = 1;
  std::int64_t mjdrefi = 51910;
  double mjdreff = 7.428703703703703e-4;
  std::string timesys = "TT";
  std::optional<std::string> timeref;
  std::optional<double> ra_pnt = 83.6331;
  double dec_pnt = 22.5145;
  double ontime = 1800.0;
  std::optional<double> livetime = 1710.0;
  std::optional<double> deadc;
  std::vector<double> time = {10, 20, 30, 40, 50};
  std::vector<double> energy = {0.1, 0.5, 1.0, 2.0, 10.0};
  std::vector<double> ra = {83.6, 83.7, 83.5, 83.6, 83.65};
  std::vector<double> dec = {22.0, 22.1, 21.9, 22.0, 22.05};
  std::string time_unit = "s";
  std::string energy_unit = "TeV";
  std::string angle_unit = "deg";
  std::vector<double> gti_start = {0.0, 1000.0};
  std::vector<double> gti_stop = {900.0, 1800.0};
  bool with_irf = true;
  // Effective area: 3 energies x 4 offsets, values a + b ln E + c o at the centres.
  std::vector<double> aeff_energy = geometric_edges(0.1, 100.0, 3);
  std::string aeff_energy_unit = "TeV";
  std::string aeff_unit = "m2";
  double aeff_scale = 1.0;  // of the m2 values
  std::optional<std::vector<std::int64_t>> aeff_tdim;
  bool psf_table = false;
  std::string bkg_class = "BKG_2D";  // BKG_2D, BKG_3D or "" (none)
  std::optional<std::string> fovalign;
  std::string bkg_unit = "s-1 MeV-1 sr-1";
  bool edisp = false;
};

// aeff at the centres: (1e5 + 2e4 ln E - 1e4 o) m2.
inline double aeff_model(double log_e, double o) { return 1e5 + 2e4 * log_e - 1e4 * o; }
// ln BKG (per MeV s sr) at the centres: linear in ln E and the offset (2d) or DETX, DETY (3d).
inline double log_bkg_model(double log_e, double x, double y) {
  return std::log(1e-6) - 2.5 * log_e - 0.2 * x + 0.1 * y;
}

inline void write_observation(const std::string& path, const Spec& s) {
  File f = File::create(path);
  const auto n = static_cast<std::int64_t>(s.time.size());
  f.create_table("EVENTS",
                 {{"EVENT_ID", "K", ""},
                  {"TIME", "D", s.time_unit},
                  {"RA", "D", s.angle_unit},
                  {"DEC", "D", s.angle_unit},
                  {"ENERGY", "E", s.energy_unit}},
                 n);
  std::vector<std::int64_t> ids(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int64_t>(i);
  f.write_column("EVENT_ID", ids);
  f.write_column("TIME", s.time);
  f.write_column("RA", s.ra);
  f.write_column("DEC", s.dec);
  f.write_column("ENERGY", s.energy);
  f.write_key("HDUCLASS", std::string("GADF"));
  f.write_key("HDUCLAS1", std::string("EVENTS"));
  if (s.obs_id) f.write_key("OBS_ID", *s.obs_id);
  f.write_key("OBJECT", std::string("Crab"));
  f.write_key("MJDREFI", s.mjdrefi);
  f.write_key("MJDREFF", s.mjdreff);
  if (!s.timesys.empty()) f.write_key("TIMESYS", s.timesys);
  if (s.timeref) f.write_key("TIMEREF", *s.timeref);
  f.write_key("TIMEUNIT", std::string("s"));
  if (s.ra_pnt) f.write_key("RA_PNT", *s.ra_pnt);
  f.write_key("DEC_PNT", s.dec_pnt);
  f.write_key("ONTIME", s.ontime);
  if (s.livetime) f.write_key("LIVETIME", *s.livetime);
  if (s.deadc) f.write_key("DEADC", *s.deadc);
  f.create_table("GTI", {{"START", "D", "s"}, {"STOP", "D", "s"}},
                 static_cast<std::int64_t>(s.gti_start.size()));
  f.write_column("START", s.gti_start);
  f.write_column("STOP", s.gti_stop);
  f.write_key("MJDREFI", s.mjdrefi);
  f.write_key("MJDREFF", s.mjdreff);
  if (!s.with_irf) return;

  // Effective area over ENERG x THETA, linear in (ln E, offset) at the bin centres.
  const std::vector<double> offsets = linear_edges(0.0, 4.0, 4);
  std::vector<double> aeff;
  for (int j = 0; j < 4; ++j) {
    for (int i = 0; i < 3; ++i) {
      const double log_e = 0.5 * (std::log(s.aeff_energy[i]) + std::log(s.aeff_energy[i + 1]));
      aeff.push_back(aeff_model(log_e, 0.5 + j) * s.aeff_scale);
    }
  }
  write_irf(f, "EFFECTIVE AREA", "EFF_AREA", "AEFF_2D",
            {{"ENERG", s.aeff_energy, s.aeff_energy_unit}, {"THETA", offsets, "deg"}},
            {{"EFFAREA", aeff, s.aeff_unit}}, s.aeff_tdim);

  // PSF: one Gaussian of 0.1 deg plus two wider ones, constant; or a table of its profile.
  const std::vector<double> psf_energy = geometric_edges(0.05, 200.0, 4);
  const std::vector<double> psf_offset = linear_edges(0.0, 4.0, 2);
  const std::size_t cells = 8;
  if (!s.psf_table) {
    write_irf(f, "PSF_2D_GAUSS", "RPSF", "PSF_3GAUSS",
              {{"ENERG", psf_energy, "TeV"}, {"THETA", psf_offset, "deg"}},
              {{"SIGMA_1", std::vector<double>(cells, 0.1), "deg"},
               {"SIGMA_2", std::vector<double>(cells, 0.2), "deg"},
               {"SIGMA_3", std::vector<double>(cells, 0.0), "deg"},  // read as 1: amplitude 0
               {"SCALE", std::vector<double>(cells, 1234.5), "sr-1"},
               {"AMPL_2", std::vector<double>(cells, 0.25), ""},
               {"AMPL_3", std::vector<double>(cells, 0.0), ""}});
  } else {
    // A Gaussian profile of sigma 0.1 deg, per sr, at the centres of 0.005 deg RAD bins.
    const std::vector<double> rad = linear_edges(0.0, 0.6, 120);
    std::vector<double> rpsf;
    for (std::size_t r = 0; r + 1 < rad.size(); ++r) {
      const double c = 0.5 * (rad[r] + rad[r + 1]);
      const double density = std::exp(-0.5 * c * c / 0.01) / (2 * pi * 0.01) * sr_to_deg2;
      for (std::size_t k = 0; k < cells; ++k) rpsf.push_back(density);
    }
    write_irf(f, "PSF_2D_TABLE", "RPSF", "PSF_TABLE",
              {{"ENERG", psf_energy, "TeV"}, {"THETA", psf_offset, "deg"}, {"RAD", rad, "deg"}},
              {{"RPSF", rpsf, "sr-1"}});
  }

  const std::vector<double> bkg_energy = geometric_edges(0.1, 100.0, 6);
  if (s.bkg_class == "BKG_2D") {
    std::vector<double> bkg;
    for (int j = 0; j < 4; ++j) {
      for (int i = 0; i < 6; ++i) {
        const double log_e = 0.5 * (std::log(bkg_energy[i]) + std::log(bkg_energy[i + 1]));
        bkg.push_back(std::exp(log_bkg_model(log_e, 0.5 + j, 0.0)));
      }
    }
    write_irf(f, "BACKGROUND", "BKG", "BKG_2D",
              {{"ENERG", bkg_energy, "TeV"}, {"THETA", offsets, "deg"}},
              {{"BKG", bkg, s.bkg_unit}});
  } else if (s.bkg_class == "BKG_3D") {
    const std::vector<double> det = linear_edges(-3.0, 3.0, 6);
    std::vector<double> bkg;
    for (int y = 0; y < 6; ++y) {
      for (int x = 0; x < 6; ++x) {
        for (int i = 0; i < 6; ++i) {
          const double log_e = 0.5 * (std::log(bkg_energy[i]) + std::log(bkg_energy[i + 1]));
          bkg.push_back(std::exp(log_bkg_model(log_e, -2.5 + x, -2.5 + y)));
        }
      }
    }
    write_irf(f, "BACKGROUND", "BKG", "BKG_3D",
              {{"ENERG", bkg_energy, "TeV"}, {"DETX", det, "deg"}, {"DETY", det, "deg"}},
              {{"BKG", bkg, s.bkg_unit}});
    if (s.fovalign) f.write_key("FOVALIGN", *s.fovalign);
  }
  if (s.edisp) {
    write_irf(f, "ENERGY DISPERSION", "EDISP", "EDISP_2D",
              {{"ENERG", bkg_energy, "TeV"},
               {"MIGRA", linear_edges(0.2, 5, 4), ""},
               {"THETA", offsets, "deg"}},
              {{"MATRIX", std::vector<double>(std::size_t{96}, 0.1), ""}});
  }
  f.close();
}

}  // namespace binflow::testing_support::gadf
