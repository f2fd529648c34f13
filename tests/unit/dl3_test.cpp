// The DL3 reader (science/dl3.hpp, dl3_irf.hpp, dl3_response.hpp, units.hpp) on small GADF
// files written here with the fits wrapper, so that every defect can be planted: the input
// kinds, units, the data set from a file, a list and an index, one-line messages for every
// class of bad input, events of a time interval against the brute-force selection, the rows
// the binary search reads, and the response's interpolation and PSF containment against
// closed forms and numerical integrals. The comparison with Gammapy is
// tests/e2e/test_dl3_irf.py.
#include "science/dl3.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <numbers>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "binflow/error.hpp"
#include "binflow/h5.hpp"
#include "science/dl3_irf.hpp"
#include "science/dl3_response.hpp"
#include "science/fits.hpp"
#include "science/integrate.hpp"
#include "science/likelihood.hpp"
#include "science/units.hpp"
#include "../helpers/gadf_writer.hpp"
#include "temp_dir.hpp"
#include "usage_message.hpp"

namespace {

namespace fs = std::filesystem;
namespace dl3 = binflow::science::dl3;
namespace units = binflow::science::units;
using binflow::UsageError;
using binflow::fits::File;


using binflow::testing_support::usage_message;

// ---- writing GADF files: tests/helpers/gadf_writer.hpp ----
using namespace binflow::testing_support::gadf;  // NOLINT(google-build-using-namespace)

class Dl3 : public binflow::testing_support::TempDirTest {
protected:
  std::string write(const std::string& name, const Spec& spec) const {
    const std::string p = path(name);
    write_observation(p, spec);
    return p;
  }
  // hdu-index and obs-index in `dir` for observations of files named by obs_id.
  void write_index(const std::string& dir, const std::vector<std::int64_t>& ids,
                   const std::vector<std::string>& files, bool with_bkg = true) const {
    std::vector<std::int64_t> obs;
    std::vector<std::string> type, hdu_class, file_dir, file_name, hdu_name;
    for (std::size_t k = 0; k < ids.size(); ++k) {
      const std::vector<std::array<std::string, 3>> rows = {{"events", "events", "EVENTS"},
                                                            {"gti", "gti", "GTI"},
                                                            {"aeff", "aeff_2d", "EFFECTIVE AREA"},
                                                            {"psf", "psf_3gauss", "PSF_2D_GAUSS"},
                                                            {"bkg", "bkg_2d", "BACKGROUND"}};
      for (const auto& row : rows) {
        if (!with_bkg && row[0] == "bkg") continue;
        obs.push_back(ids[k]);
        type.push_back(row[0]);
        hdu_class.push_back(row[1]);
        file_dir.push_back("data");
        file_name.push_back(files[k]);
        hdu_name.push_back(row[2]);
      }
    }
    File index = File::create(dir + "/hdu-index.fits.gz");  // cfitsio compresses on close
    index.create_table("HDU_INDEX",
                       {{"OBS_ID", "K", ""},
                        {"HDU_TYPE", "8A", ""},
                        {"HDU_CLASS", "12A", ""},
                        {"FILE_DIR", "16A", ""},
                        {"FILE_NAME", "32A", ""},
                        {"HDU_NAME", "24A", ""}},
                       static_cast<std::int64_t>(obs.size()));
    index.write_column("OBS_ID", obs);
    index.write_column("HDU_TYPE", type);
    index.write_column("HDU_CLASS", hdu_class);
    index.write_column("FILE_DIR", file_dir);
    index.write_column("FILE_NAME", file_name);
    index.write_column("HDU_NAME", hdu_name);
    index.close();
    File obs_index = File::create(dir + "/obs-index.fits");
    obs_index.create_table("OBS_INDEX", {{"OBS_ID", "K", ""}},
                           static_cast<std::int64_t>(ids.size()));
    obs_index.write_column("OBS_ID", ids);
    obs_index.close();
  }

  fs::path dir_;
};

// ---- units ----

TEST(Dl3Units, ConvertsTheSpellingsOfGadfFiles) {
  using units::Quantity;
  const auto f = [](const char* text, Quantity q) { return units::factor(text, q).value_or(-1); };
  EXPECT_DOUBLE_EQ(f("TeV", Quantity::energy), 1.0);
  EXPECT_DOUBLE_EQ(f("GeV", Quantity::energy), 1e-3);
  EXPECT_DOUBLE_EQ(f(" MeV ", Quantity::energy), 1e-6);
  EXPECT_DOUBLE_EQ(f("keV", Quantity::energy), 1e-9);
  EXPECT_NEAR(f("erg", Quantity::energy), 0.6241509074, 1e-9);
  EXPECT_DOUBLE_EQ(f("deg", Quantity::angle), 1.0);
  EXPECT_DOUBLE_EQ(f("rad", Quantity::angle), 180.0 / pi);
  EXPECT_DOUBLE_EQ(f("s", Quantity::time), 1.0);
  EXPECT_DOUBLE_EQ(f("d", Quantity::time), 86400.0);
  for (const char* area : {"m2", "m**2", "m^2", "m**(2)"}) {
    EXPECT_DOUBLE_EQ(f(area, Quantity::area), 1e4) << area;
  }
  EXPECT_DOUBLE_EQ(f("cm2", Quantity::area), 1.0);
  EXPECT_DOUBLE_EQ(f("cm**2", Quantity::area), 1.0);
  for (const char* density : {"sr-1", "1/sr", "1 / sr", "sr**-1", "sr^-1"}) {
    EXPECT_DOUBLE_EQ(f(density, Quantity::per_solid_angle), 1.0 / sr_to_deg2) << density;
  }
  EXPECT_DOUBLE_EQ(f("deg-2", Quantity::per_solid_angle), 1.0);
  EXPECT_DOUBLE_EQ(f("1 / deg2", Quantity::per_solid_angle), 1.0);
  const double per_mev = 1e6 / sr_to_deg2;
  for (const char* rate :
       {"MeV-1 s-1 sr-1", "s-1 MeV-1 sr-1", "1 / (MeV s sr)", "1/(s*MeV*sr)", "s^-1 MeV^-1 sr^-1",
        "s**-1 MeV**-1 sr**-1", "1/s/MeV/sr", "ct / (s MeV sr)", "MeV-1.s-1.sr-1"}) {
    EXPECT_NEAR(f(rate, Quantity::background_rate), per_mev, 1e-12 * per_mev) << rate;
  }
  EXPECT_DOUBLE_EQ(f("s-1 TeV-1 deg-2", Quantity::background_rate), 1.0);
  EXPECT_DOUBLE_EQ(f("", Quantity::dimensionless), 1.0);
  // Unknown, of another dimension, or case-mangled.
  for (const auto& [text, quantity] :
       std::vector<std::pair<const char*, Quantity>>{{"furlong", Quantity::energy},
                                                     {"meV", Quantity::energy},
                                                     {"TEV", Quantity::energy},
                                                     {"TeV2", Quantity::energy},
                                                     {"MeV s", Quantity::background_rate},
                                                     {"m2 (", Quantity::area},
                                                     {"s-", Quantity::time},
                                                     {"", Quantity::energy}}) {
    EXPECT_FALSE(units::factor(text, quantity).has_value()) << text;
  }
}

// Found by fuzz_units (docs/checking.md): powers of powers overflowed int (undefined
// behaviour) and scales overflowed to inf or underflowed to 0.
TEST(Dl3Units, PowersAndScalesOutOfRangeAreNoUnit) {
  using units::Quantity;
  EXPECT_FALSE(units::parse("((((s99)99)99)99)99").has_value());
  EXPECT_FALSE(units::factor("999999999^99 TeV", Quantity::energy).has_value());
  EXPECT_FALSE(units::factor("eV99 TeV-98", Quantity::energy).has_value());
  EXPECT_DOUBLE_EQ(units::factor("s99 s-98", Quantity::time).value_or(-1), 1.0);
}

TEST(Dl3Units, MessagesNameWhereAndWhatWasExpected) {
  using units::Quantity;
  EXPECT_EQ(usage_message([] {
              (void)units::require_factor("", Quantity::area, "a.fits[EFFECTIVE AREA] EFFAREA");
            }),
            "a.fits[EFFECTIVE AREA] EFFAREA: has no unit (TUNITn), expected an area (m2, cm2)");
  EXPECT_EQ(usage_message([] {
              (void)units::require_factor("furlong", Quantity::energy, "a.fits[EVENTS] ENERGY");
            }),
            "a.fits[EVENTS] ENERGY: unit 'furlong' is not an energy (TeV, GeV, MeV, ...)");
}

// ---- input kinds ----

TEST_F(Dl3, InputKindFromContent) {
  // An HDF5 file (the event file of SCIENCE.md section 1), whatever its name.
  { binflow::h5::Location h5 = binflow::h5::create_file(path("events.fits")); }
  EXPECT_EQ(dl3::input_kind(path("events.fits")), dl3::InputKind::event_file);
  // A DL3 file, also named .h5; a gzip file counts as (compressed) FITS.
  const std::string obs = write("obs.h5", Spec{});
  EXPECT_EQ(dl3::input_kind(obs), dl3::InputKind::dl3_file);
  std::ofstream(path("obs.fits.gz"), std::ios::binary) << "\x1f\x8b\x08 compressed bytes";
  EXPECT_EQ(dl3::input_kind(path("obs.fits.gz")), dl3::InputKind::dl3_file);
  // A text list.
  std::ofstream(path("runs.txt")) << "# runs\n\nobs.h5\n";
  EXPECT_EQ(dl3::input_kind(path("runs.txt")), dl3::InputKind::dl3_list);
  // An index directory: both files, .fits or .fits.gz.
  fs::create_directories(path("index/data"));
  write_index(path("index"), {1}, {"obs.fits"});
  EXPECT_EQ(dl3::input_kind(path("index")), dl3::InputKind::dl3_index);

  // Anything else: one line naming the path and why.
  fs::create_directories(path("half"));
  std::ofstream(path("half/hdu-index.fits")) << "x";
  EXPECT_EQ(usage_message([&] { (void)dl3::input_kind(path("half")); }),
            path("half") +
                ": is a directory without obs-index.fits[.gz] (a DL3 index directory "
                "holds hdu-index.fits[.gz] and obs-index.fits[.gz])");
  fs::create_directories(path("empty_dir"));
  EXPECT_NE(usage_message([&] { (void)dl3::input_kind(path("empty_dir")); }).find("either index"),
            std::string::npos);
  EXPECT_EQ(usage_message([&] { (void)dl3::input_kind(path("missing")); }),
            path("missing") + ": no such file or directory");
  { const std::ofstream empty(path("empty")); }
  EXPECT_EQ(usage_message([&] { (void)dl3::input_kind(path("empty")); }),
            path("empty") + ": is empty");
  std::ofstream(path("blob"), std::ios::binary) << std::string("ab\0cd", 5);
  EXPECT_EQ(usage_message([&] { (void)dl3::input_kind(path("blob")); }),
            path("blob") +
                ": is neither an HDF5 event file, a FITS file, nor a text list of DL3 "
                "files (binary content)");
  std::ofstream(path("comments.txt")) << "# nothing\n   \n";
  EXPECT_EQ(usage_message([&] { (void)dl3::input_kind(path("comments.txt")); }),
            path("comments.txt") +
                ": is a text file without an entry (a list of DL3 files has "
                "one path per line)");
  EXPECT_EQ(usage_message([&] { (void)dl3::DataSet::open(path("events.fits")); }),
            path("events.fits") + ": is an HDF5 event file, not DL3 input");
}

// ---- the data set ----

TEST_F(Dl3, OneFileReadAndConverted) {
  Spec spec;
  spec.aeff_energy = {100.0, 1000.0, 10000.0, 100000.0};  // GeV
  spec.aeff_energy_unit = "GeV";
  spec.aeff_unit = "cm2";
  spec.aeff_scale = 1e4;  // the same area in cm2
  spec.edisp = true;
  spec.energy_unit = "GeV";
  spec.energy = {100, 500, 1000, 2000, 10000};
  const std::string p = write("obs.fits", spec);
  const dl3::DataSet set = dl3::DataSet::open(p);
  ASSERT_EQ(set.size(), 1U);
  EXPECT_EQ(set.kind(), dl3::InputKind::dl3_file);
  const dl3::Observation& obs = set.observations()[0];
  EXPECT_EQ(obs.obs_id, 1);
  EXPECT_EQ(obs.object, "Crab");
  EXPECT_EQ(obs.ra_pnt, 83.6331);
  EXPECT_EQ(obs.ontime, 1800.0);
  EXPECT_EQ(obs.livetime, 1710.0);
  EXPECT_NEAR(obs.deadtime_fraction(), 0.05, 1e-15);
  EXPECT_EQ(obs.time_shift, 0.0);
  EXPECT_EQ(obs.gti.start, (std::vector<double>{0.0, 1000.0}));
  EXPECT_EQ(obs.n_events, 5);
  EXPECT_EQ(obs.events.text(), p + "[EVENTS]");
  EXPECT_EQ(obs.psf_class, dl3::IrfClass::psf_3gauss);
  EXPECT_EQ(obs.bkg_class, dl3::IrfClass::bkg_2d);
  ASSERT_TRUE(obs.edisp.has_value());
  EXPECT_EQ(obs.edisp.value_or(dl3::HduLocation{}).hdu, "ENERGY DISPERSION");
  ASSERT_EQ(set.notes().size(), 1U);
  EXPECT_NE(set.notes()[0].find("not applied"), std::string::npos) << set.notes()[0];
  const dl3::TimeReference& time = set.time_reference();
  EXPECT_EQ(time.mjdref_int, 51910);
  EXPECT_EQ(time.timesys, "TT");
  EXPECT_EQ(time.timeref, "LOCAL");
  EXPECT_NEAR(time.mjd(86400.0), 51911.0 + 7.428703703703703e-4, 1e-12);
  EXPECT_NEAR(time.seconds(time.mjd(1234.5)), 1234.5, 1e-6);

  // Axes in TeV and deg, area in cm2, background in s^-1 TeV^-1 deg^-2.
  const dl3::IrfTable& aeff = obs.irf.aeff->table;
  ASSERT_EQ(aeff.axes.size(), 2U);
  EXPECT_EQ(aeff.axes[0].name, "ENERG");
  EXPECT_DOUBLE_EQ(aeff.axes[0].edges.front(), 0.1);
  EXPECT_DOUBLE_EQ(aeff.axes[0].edges.back(), 100.0);
  EXPECT_NEAR(aeff.axes[0].nodes[0], 0.5 * std::log(0.1 * 1.0), 1e-12);
  EXPECT_EQ(aeff.axes[1].nodes, (std::vector<double>{0.5, 1.5, 2.5, 3.5}));
  // (the file's model is linear in ln(E / GeV) here)
  EXPECT_NEAR(aeff.values[0], aeff_model(0.5 * (std::log(100.0) + std::log(1000.0)), 0.5) * 1e4,
              1e-6);
  const dl3::IrfTable& bkg = obs.irf.bkg->table;
  EXPECT_NEAR(bkg.values[0],
              std::exp(log_bkg_model(bkg.axes[0].nodes[0], 0.5, 0.0)) * 1e6 / sr_to_deg2, 1e-15);

  dl3::EventReader reader(obs);
  const binflow::science::Events events = reader.read_all();
  EXPECT_EQ(events.time, spec.time);
  const std::vector<double> tev = {0.1, 0.5, 1.0, 2.0, 10.0};
  ASSERT_EQ(events.energy.size(), tev.size());
  for (std::size_t i = 0; i < tev.size(); ++i) EXPECT_DOUBLE_EQ(events.energy[i], tev[i]);
  EXPECT_EQ(events.dec, spec.dec);
}

TEST_F(Dl3, ListTimeAxisAndSharedResponse) {
  write("a.fits", Spec{});
  Spec second;
  second.obs_id = 7;
  second.mjdrefi = 51911;
  second.mjdreff = 0.25;
  second.livetime.reset();
  second.deadc = 0.9;
  second.with_irf = false;  // its response comes from a file of its own
  second.angle_unit = "rad";
  second.ra = {1.0, 1.0, 1.0, 1.0, 1.0};
  second.dec = {0.5, 0.5, 0.5, 0.5, 0.5};
  write("b.fits", second);
  Spec response;
  response.psf_table = true;
  response.bkg_class = "BKG_3D";
  response.fovalign = "RADEC";
  write("irf.fits", response);
  fs::create_directories(path("sub"));
  std::ofstream(path("sub/runs.txt"))
      << "# relative to this list\n../a.fits\n\n  ../b.fits ../irf.fits   # a separate response\n";
  const dl3::DataSet set = dl3::DataSet::open(path("sub/runs.txt"));
  EXPECT_EQ(set.kind(), dl3::InputKind::dl3_list);
  ASSERT_EQ(set.size(), 2U);
  const dl3::Observation& b = set.observations()[1];
  EXPECT_EQ(b.obs_id, 7);
  EXPECT_EQ(b.events.file, path("b.fits"));
  EXPECT_DOUBLE_EQ(b.livetime, 1800.0 * 0.9);
  // One day plus 0.25 d minus the first MJDREFF.
  EXPECT_NEAR(b.time_shift, (1.0 + 0.25 - 7.428703703703703e-4) * 86400.0, 1e-6);
  EXPECT_NEAR(b.gti.start[1], 1000.0 + b.time_shift, 1e-6);
  EXPECT_EQ(b.psf_class, dl3::IrfClass::psf_table);
  EXPECT_EQ(b.bkg_class, dl3::IrfClass::bkg_3d);
  dl3::EventReader reader(b);
  const binflow::science::Events events = reader.read_all();
  EXPECT_NEAR(events.time[0], 10.0 + b.time_shift, 1e-6);
  EXPECT_DOUBLE_EQ(events.ra[0], 180.0 / pi);
  EXPECT_EQ(set.n_events(), 10);
  // Observation a spans [0, 1800) s, b the same a day and a quarter later.
  EXPECT_EQ(set.overlapping(-10.0, 0.0), (std::vector<std::size_t>{}));
  EXPECT_EQ(set.overlapping(1799.0, 2000.0), (std::vector<std::size_t>{0}));
  EXPECT_EQ(set.overlapping(0.0, b.time_shift + 1.0), (std::vector<std::size_t>{0, 1}));
  EXPECT_EQ(set.overlapping(b.time_shift + 1800.0, 1e9), (std::vector<std::size_t>{}));
  // A time range on the axis.
  const binflow::science::Events some =
      reader.read_time_range(b.time_shift + 15.0, b.time_shift + 40.0);
  EXPECT_EQ(some.size(), 2U);  // 20 and 30: the interval is half-open

  // Selection by OBS_ID, in the order given; an id that is not there.
  const dl3::DataSet only = dl3::DataSet::open(path("sub/runs.txt"), {7});
  ASSERT_EQ(only.size(), 1U);
  EXPECT_EQ(only.time_reference().mjdref_int, 51911);  // its own axis
  EXPECT_EQ(usage_message([&] { (void)dl3::DataSet::open(path("sub/runs.txt"), {3}); }),
            path("sub/runs.txt") + ": no observation with OBS_ID 3");

  // Two observations naming one response HDU share it.
  std::ofstream(path("twice.txt")) << "b.fits irf.fits\nc.fits irf.fits\n";
  second.obs_id = 8;
  write("c.fits", second);
  const dl3::DataSet shared = dl3::DataSet::open(path("twice.txt"));
  EXPECT_EQ(shared.observations()[0].irf.psf, shared.observations()[1].irf.psf);
}

TEST_F(Dl3, IndexDirectory) {
  fs::create_directories(path("store/data"));
  Spec spec;
  for (const std::int64_t id : {11, 12, 13}) {
    spec.obs_id = id;
    write_observation(path("store/data/run" + std::to_string(id) + ".fits"), spec);
  }
  write_index(path("store"), {11, 12, 13}, {"run11.fits", "run12.fits", "run13.fits"});
  const dl3::DataSet all = dl3::DataSet::open(path("store"));
  EXPECT_EQ(all.kind(), dl3::InputKind::dl3_index);
  ASSERT_EQ(all.size(), 3U);
  EXPECT_EQ(all.observations()[2].events.file, path("store/data/run13.fits"));
  const dl3::DataSet some = dl3::DataSet::open(path("store"), {13, 11});
  ASSERT_EQ(some.size(), 2U);
  EXPECT_EQ(some.observations()[0].obs_id, 13);
  EXPECT_EQ(some.observations()[1].obs_id, 11);
  EXPECT_EQ(usage_message([&] { (void)dl3::DataSet::open(path("store"), {99}); }),
            path("store/obs-index.fits") + ": OBS_ID 99 is not in the index");

  fs::create_directories(path("nobkg/data"));
  write_observation(path("nobkg/data/run.fits"), spec);
  write_index(path("nobkg"), {13}, {"run.fits"}, false);
  EXPECT_EQ(usage_message([&] { (void)dl3::DataSet::open(path("nobkg")); }),
            path("nobkg/hdu-index.fits.gz") +
                "[HDU_INDEX] (OBS_ID 13): no background (bkg_2d or bkg_3d) HDU for this "
                "observation: binflow's likelihood needs a background model (an ON/OFF analysis "
                "is out of scope)");
}

// ---- bad input: one line naming file[HDU] and the column or keyword ----

TEST_F(Dl3, EveryBadInputIsOneLineNamingFileHduAndItem) {
  struct Case {
    std::string what;
    std::function<void(Spec&)> spoil;
    std::string expected;  // after "<path>"
  };
  const std::vector<Case> cases = {
      {"effective area without unit", [](Spec& s) { s.aeff_unit = ""; },
       "[EFFECTIVE AREA] EFFAREA: has no unit (TUNITn), expected an area (m2, cm2)"},
      {"unknown energy unit", [](Spec& s) { s.energy_unit = "furlong"; },
       "[EVENTS] ENERGY: unit 'furlong' is not an energy (TeV, GeV, MeV, ...)"},
      {"time column without unit", [](Spec& s) { s.time_unit = ""; },
       "[EVENTS] TIME: has no unit (TUNITn), expected a time (s)"},
      {"background in the wrong unit", [](Spec& s) { s.bkg_unit = "s-1 MeV-1"; },
       "[BACKGROUND] BKG: unit 's-1 MeV-1' is not a background rate (s-1 MeV-1 sr-1, s-1 TeV-1 "
       "deg-2, ...)"},
      {"no pointing", [](Spec& s) { s.ra_pnt.reset(); },
       "[EVENTS]: header keyword RA_PNT is missing"},
      {"declination of the pointing", [](Spec& s) { s.dec_pnt = 95.0; },
       "[EVENTS] DEC_PNT: is 95, expected a declination in [-90, 90] deg"},
      {"no TIMESYS", [](Spec& s) { s.timesys = ""; },
       "[EVENTS]: header keyword TIMESYS is missing"},
      // fuzz_dl3_file: 2^63 - 1 as MJDREFI overflowed the conversion to an integer day.
      {"MJDREFI far beyond any date", [](Spec& s) { s.mjdrefi = 9223372036854775807; },
       "[EVENTS]: MJDREFI 9.223372036854776e+18 / MJDREFF 0.0007428703703703703 are not an MJD"},
      {"livetime above ontime", [](Spec& s) { s.livetime = 2000.0; },
       "[EVENTS] LIVETIME: is 2000 s, expected a positive time up to ONTIME (1800 s)"},
      {"no livetime", [](Spec& s) { s.livetime.reset(); },
       "[EVENTS]: header keywords LIVETIME and DEADC are both missing"},
      {"overlapping GTIs",
       [](Spec& s) {
         s.gti_start = {0.0, 800.0};
       },
       "[GTI]: GTIs overlap or are out of order (GTI 1 starts at 800 before GTI 0 stops at "
       "900)"},
      {"ALTAZ background",
       [](Spec& s) {
         s.bkg_class = "BKG_3D";
         s.fovalign = "ALTAZ";
       },
       "[BACKGROUND]: FOVALIGN is 'ALTAZ': a background in field-of-view coordinates aligned "
       "with ALTAZ needs the pointing's alt-az track, which binflow does not use; only RADEC is "
       "supported"},
      {"no background", [](Spec& s) { s.bkg_class = ""; },
       ": no background (bkg_2d or bkg_3d) HDU for this observation: binflow's likelihood needs "
       "a background model (an ON/OFF analysis is out of scope)"},
      {"transposed data cell",
       [](Spec& s) {
         s.aeff_tdim = std::vector<std::int64_t>{4, 3};
       },
       "[EFFECTIVE AREA] EFFAREA: TDIM (4,3) does not match the axes ENERG (3), THETA (4) (in "
       "the order of their columns, the first fastest)"},
      {"NaN effective area",
       [](Spec& s) { s.aeff_scale = std::numeric_limits<double>::quiet_NaN(); },
       "[EFFECTIVE AREA] EFFAREA: value nan at ENERG bin 0, THETA bin 0 is not finite and >= 0"},
      {"non-positive energy edge",
       [](Spec& s) {
         s.aeff_energy = {0.0, 1.0, 10.0, 100.0};
       },
       "[EFFECTIVE AREA] ENERG_LO: value 0 of bin 0 is not finite and > 0"},
  };
  int n = 0;
  for (const Case& c : cases) {
    Spec spec;
    c.spoil(spec);
    const std::string p = write("bad" + std::to_string(n++) + ".fits", spec);
    const std::string message = usage_message([&] { (void)dl3::DataSet::open(p); });
    EXPECT_EQ(message, p + c.expected) << c.what;
    EXPECT_EQ(message.find('\n'), std::string::npos) << c.what;
  }

  Spec negative;
  negative.aeff_scale = -1.0;
  const std::string p = write("negative.fits", negative);
  const std::string m = usage_message([&] { (void)dl3::DataSet::open(p); });
  EXPECT_EQ(m.rfind(p + "[EFFECTIVE AREA] EFFAREA: value -", 0), 0U) << m;
  EXPECT_NE(m.find(" at ENERG bin 0, THETA bin 0 is not finite and >= 0"), std::string::npos) << m;

  // Two observations on different time systems.
  Spec tt;
  const std::string a = write("tt.fits", tt);
  Spec utc;
  utc.obs_id = 2;
  utc.timesys = "UTC";
  const std::string b = write("utc.fits", utc);
  std::ofstream(path("mixed.txt")) << "tt.fits\nutc.fits\n";
  EXPECT_EQ(usage_message([&] { (void)dl3::DataSet::open(path("mixed.txt")); }),
            b + "[EVENTS] TIMESYS: 'UTC' differs from 'TT' of the first observation (" + a +
                "[EVENTS]); all observations must share one TIMESYS");
  std::ofstream(path("twice.txt")) << "tt.fits\ntt.fits\n";
  EXPECT_EQ(usage_message([&] { (void)dl3::DataSet::open(path("twice.txt")); }),
            a + "[EVENTS]: OBS_ID 1 appears twice in " + path("twice.txt"));
  std::ofstream(path("missing.txt")) << "tt.fits\n\nnone.fits\n";
  EXPECT_EQ(usage_message([&] { (void)dl3::DataSet::open(path("missing.txt")); }),
            path("missing.txt") + ":3: " + path("none.fits") + ": does not exist");
}

TEST_F(Dl3, BadEventRowsAreFoundWhenRead) {
  const auto message = [&](const std::function<void(Spec&)>& spoil) {
    Spec spec;
    spoil(spec);
    const std::string p = write("rows.fits", spec);
    const dl3::DataSet set = dl3::DataSet::open(p);  // the header is fine
    dl3::EventReader reader(set.observations()[0]);
    std::string m = usage_message([&] { (void)reader.read_all(); });
    fs::remove(p);
    const std::string prefix = p + "[EVENTS] ";
    EXPECT_EQ(m.rfind(prefix, 0), 0U) << m;
    return m.substr(std::min(m.size(), prefix.size()));
  };
  EXPECT_EQ(message([](Spec& s) { s.time[3] = 5.0; }), "TIME: is not sorted (row 3 < row 2)");
  EXPECT_EQ(message([](Spec& s) { s.time[4] = std::numeric_limits<double>::quiet_NaN(); }),
            "TIME: is NaN at row 4");
  EXPECT_EQ(message([](Spec& s) { s.energy[2] = 0.0; }),
            "ENERGY: is 0 at row 2, expected a positive energy");
  EXPECT_EQ(message([](Spec& s) { s.dec[1] = -91.0; }),
            "DEC: is -91 at row 1, expected a declination in [-90, 90] deg");
  EXPECT_EQ(message([](Spec& s) { s.ra[0] = std::numeric_limits<double>::infinity(); }),
            "RA: is +inf at row 0");
}

// ---- events of a time interval ----

TEST_F(Dl3, TimeRangeEqualsTheBruteForceSelection) {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> uniform(0.0, 1800.0);
  Spec spec;
  const std::size_t n = 30000;
  spec.time.resize(n);
  for (double& t : spec.time) t = std::round(uniform(rng) * 10.0) / 10.0;  // many equal times
  std::sort(spec.time.begin(), spec.time.end());
  spec.energy.assign(n, 1.0);
  spec.ra.resize(n);
  spec.dec.assign(n, 22.0);
  for (std::size_t i = 0; i < n; ++i) spec.ra[i] = 80.0 + static_cast<double>(i) * 1e-4;
  const std::string p = write("many.fits", spec);
  const dl3::DataSet set = dl3::DataSet::open(p);
  dl3::EventReader reader(set.observations()[0]);
  const binflow::science::Events all = reader.read_all();
  ASSERT_EQ(all.size(), n);
  std::vector<std::pair<double, double>> ranges = {{-100.0, 0.0},
                                                   {-100.0, 1e6},
                                                   {0.0, 1800.0},
                                                   {spec.time[100], spec.time[100]},
                                                   {spec.time[100], spec.time[101]},
                                                   {1799.9, 5000.0},
                                                   {600.0, 600.1}};
  for (int k = 0; k < 200; ++k) {
    const double a = uniform(rng);
    const double b = uniform(rng);
    ranges.emplace_back(std::min(a, b), std::max(a, b));
  }
  for (const auto& [t0, t1] : ranges) {
    const binflow::science::Events got = reader.read_time_range(t0, t1);
    std::vector<double> time;
    std::vector<double> ra;
    for (std::size_t i = 0; i < n; ++i) {
      if (all.time[i] >= t0 && all.time[i] < t1) {
        time.push_back(all.time[i]);
        ra.push_back(all.ra[i]);
      }
    }
    EXPECT_EQ(got.time, time) << "[" << t0 << ", " << t1 << ")";
    EXPECT_EQ(got.ra, ra) << "[" << t0 << ", " << t1 << ")";
  }
}

TEST_F(Dl3, BinarySearchReadsOnlyTheNeededRows) {
  Spec spec;
  const std::size_t n = 300000;
  spec.time.resize(n);
  for (std::size_t i = 0; i < n; ++i) spec.time[i] = static_cast<double>(i) * 0.006;
  spec.energy.assign(n, 1.0);
  spec.ra.assign(n, 83.6);
  spec.dec.assign(n, 22.0);
  const std::string p = write("large.fits", spec);
  const dl3::DataSet set = dl3::DataSet::open(p);
  dl3::EventReader reader(set.observations()[0]);
  EXPECT_EQ(reader.time_rows_read(), 0);
  const binflow::science::Events range = reader.read_time_range(900.0, 906.0);  // 1000 rows
  ASSERT_EQ(range.size(), 1000U);
  EXPECT_DOUBLE_EQ(range.time.front(), 900.0);
  EXPECT_EQ(reader.rows_read(), 1000);
  // Two searches: each at most log2(300000 / 1024) + 1 = 10 probes and a window of 1024 rows.
  EXPECT_LE(reader.time_rows_read(), 1000 + 2 * (1024 + 10));
}

// ---- the response ----

TEST_F(Dl3, EffectiveAreaAndBackgroundInterpolation) {
  Spec spec;
  write("obs.fits", spec);
  const dl3::DataSet set = dl3::DataSet::open(path("obs.fits"));
  const dl3::Observation& obs = set.observations()[0];
  // A source 1.2 deg north of the pointing.
  const dl3::ObservationResponse r(obs, obs.ra_pnt, obs.dec_pnt + 1.2);
  EXPECT_NEAR(r.offset(), 1.2, 1e-12);
  EXPECT_NEAR(r.fov_lon(), 0.0, 1e-12);
  EXPECT_NEAR(r.fov_lat(), 1.2, 1e-12);
  EXPECT_TRUE(r.in_field_of_view());
  // aeff is linear in (ln E, offset) at the centres: bilinear interpolation (and the
  // extrapolation between the outer centres and the edges) reproduce it exactly.
  for (const double e : {0.1, 0.2, 1.0, 3.0, 31.6, 99.0, 100.0}) {
    EXPECT_NEAR(r.aeff(e), aeff_model(std::log(e), 1.2) * 1e4, 1e-6) << e;
  }
  EXPECT_EQ(r.aeff(0.0999), 0.0);  // outside the bin edges
  EXPECT_EQ(r.aeff(100.01), 0.0);
  // ln BKG is linear in (ln E, offset): a power law.
  for (const double e : {0.1, 0.5, 1.0, 7.0, 100.0}) {
    const double expected = std::exp(log_bkg_model(std::log(e), 1.2, 0.0)) * 1e6 / sr_to_deg2;
    EXPECT_NEAR(r.bkg_rate(e), expected, 1e-12 * expected) << e;
    EXPECT_DOUBLE_EQ(r.bkg_rate_per_livetime(e), r.bkg_rate(e) / 0.95);
  }
  EXPECT_EQ(r.bkg_rate(120.0), 0.0);
  const dl3::ResponseTable table = r.tabulate({0.3, 3.0}, 0.2);
  EXPECT_EQ(table.aeff[1], r.aeff(3.0));
  EXPECT_EQ(table.psf_containment[0], r.psf_containment(0.3, 0.2));
  EXPECT_EQ(table.bkg_rate[1], r.bkg_rate_per_livetime(3.0));

  // Beyond the offset axis (4 deg): no effective area, no background.
  const dl3::ObservationResponse far(obs, obs.ra_pnt, obs.dec_pnt + 4.5);
  EXPECT_FALSE(far.in_field_of_view());
  EXPECT_EQ(far.aeff(1.0), 0.0);
  EXPECT_EQ(far.bkg_rate(1.0), 0.0);
  EXPECT_GT(far.psf_density(1.0, 0.05), 0.0);  // the PSF is held at the last offset

  // bkg_3d at the source's field-of-view coordinates: 1 deg east of a pointing on the
  // equator is lon 1, lat 0.
  Spec three;
  three.bkg_class = "BKG_3D";
  three.dec_pnt = 0.0;
  three.ra_pnt = 10.0;
  write("three.fits", three);
  const dl3::DataSet set3 = dl3::DataSet::open(path("three.fits"));
  ASSERT_EQ(set3.notes().size(), 1U);  // FOVALIGN absent: RADEC assumed
  EXPECT_NE(set3.notes()[0].find("taken as RADEC"), std::string::npos);
  const dl3::ObservationResponse east(set3.observations()[0], 11.0, 0.5);
  EXPECT_NEAR(east.fov_lat(), 0.5, 1e-3);
  EXPECT_GT(east.fov_lon(), 0.99);
  for (const double e : {0.2, 2.0, 20.0}) {
    const double expected =
        std::exp(log_bkg_model(std::log(e), east.fov_lon(), east.fov_lat())) * 1e6 / sr_to_deg2;
    EXPECT_NEAR(east.bkg_rate(e), expected, 1e-12 * expected) << e;
  }
}

// 2 pi Int_0^theta_max density(t) t dt by composite Simpson.
double integrate_psf(const dl3::ObservationResponse& r, double energy, double theta_max, int n) {
  const double h = theta_max / n;
  double sum = 0.0;
  for (int k = 0; k <= n; ++k) {
    const double t = h * k;
    const double w = (k == 0 || k == n) ? 1.0 : (k % 2 == 1 ? 4.0 : 2.0);
    sum += w * r.psf_density(energy, t) * t;
  }
  return 2.0 * pi * sum * h / 3.0;
}

TEST_F(Dl3, ThreeGaussianPsf) {
  write("obs.fits", Spec{});
  const dl3::DataSet set = dl3::DataSet::open(path("obs.fits"));
  const dl3::ObservationResponse r(set.observations()[0], 83.6331, 22.0145);
  // Two components, sigma 0.1 and 0.2, amplitudes 1 and 0.25: weights 1 : 0.25 * 4.
  const auto expected = [](double t) {
    const double g1 = std::exp(-0.5 * t * t / 0.01) / (2 * pi * 0.01);
    const double g2 = std::exp(-0.5 * t * t / 0.04) / (2 * pi * 0.04);
    return 0.5 * g1 + 0.5 * g2;
  };
  for (const double t : {0.0, 0.05, 0.2, 0.5}) {
    EXPECT_NEAR(r.psf_density(1.0, t), expected(t), 1e-12 * expected(0.0)) << t;
  }
  for (const double theta_max : {0.05, 0.2, 0.6}) {
    EXPECT_NEAR(r.psf_containment(1.0, theta_max), integrate_psf(r, 1.0, theta_max, 2000), 1e-10);
  }
  EXPECT_NEAR(r.psf_containment(1.0, 5.0), 1.0, 1e-12);
  EXPECT_EQ(r.psf_containment(1.0, 0.0), 0.0);
  // Outside the energy edges the parameters are held at the edge.
  EXPECT_DOUBLE_EQ(r.psf_density(1000.0, 0.1), r.psf_density(200.0, 0.1));
}

TEST_F(Dl3, TablePsfContainmentIsTheIntegralOfItsProfile) {
  Spec spec;
  spec.psf_table = true;
  write("obs.fits", spec);
  const dl3::DataSet set = dl3::DataSet::open(path("obs.fits"));
  const dl3::ObservationResponse r(set.observations()[0], 83.6331, 22.0145);
  // The table samples a Gaussian of 0.1 deg (given per sr) at the RAD centres.
  for (const double t : {0.0025, 0.0525, 0.2025}) {
    const double g = std::exp(-0.5 * t * t / 0.01) / (2 * pi * 0.01);
    EXPECT_NEAR(r.psf_density(1.0, t), g, 1e-10 * g) << t;
  }
  EXPECT_EQ(r.psf_density(1.0, 0.61), 0.0);  // beyond the last RAD edge
  for (const double theta_max : {0.013, 0.1, 0.2, 0.45}) {
    // Simpson over a piecewise linear profile: 1e-9 with 12000 intervals.
    EXPECT_NEAR(r.psf_containment(1.0, theta_max), integrate_psf(r, 1.0, theta_max, 12000), 1e-8)
        << theta_max;
    // The profile is linear between samples 0.05 sigma apart: (h / sigma)^2 / 12 = 2e-4.
    const double gauss = -std::expm1(-0.5 * theta_max * theta_max / 0.01);
    EXPECT_NEAR(r.psf_containment(1.0, theta_max), gauss, 4e-4) << theta_max;
  }
  EXPECT_NEAR(r.psf_containment(1.0, 0.6), r.psf_containment(1.0, 2.0), 1e-15);
}

}  // namespace

// ---- the likelihood over several observations (SCIENCE.md section 7) ----

class Dl3Fit : public Dl3 {
protected:
  // Two observations of one source, pointed 0.5 deg north and 0.8 deg south of it (different
  // offsets: different aeff, PSF and background at the source).
  void SetUp() override {
    Dl3::SetUp();
    Spec north;
    north.dec_pnt = 22.5145;
    Spec south;
    south.obs_id = 2;
    south.dec_pnt = 21.2145;
    south.livetime = 1620.0;
    south.psf_table = true;
    for (const auto& [name, spec] : {std::pair{"north.fits", north}, std::pair{"south.fits", south}}) {
      const dl3::DataSet set = dl3::DataSet::open(write(name, spec));
      responses_.emplace_back(set.observations()[0], settings_.ra, settings_.dec);
    }
    // Events of two parts: energies spread over [emin, emax], offsets inside the ROI.
    binflow::science::RoiEvents a;
    binflow::science::RoiEvents b;
    for (int i = 0; i < 40; ++i) {
      const double e = 0.2 * std::pow(300.0, (i + 0.5) / 40.0);
      (i % 3 == 0 ? b : a).energy.push_back(e);
      (i % 3 == 0 ? b : a).theta.push_back(0.19 * std::sqrt((i % 7 + 0.5) / 7.0));
    }
    a.livetime = 500.0;
    b.livetime = 300.0;
    events_.append_part(0, a);
    events_.append_part(1, b);
  }

  binflow::science::FitSettings settings_ = [] {
    binflow::science::FitSettings s;
    s.emin = 0.2;
    s.emax = 60.0;
    s.ra = 83.6331;
    s.dec = 22.0145;
    s.theta_max = 0.2;
    return s;
  }();
  std::vector<dl3::ObservationResponse> responses_;
  binflow::science::RoiEvents events_;
};

// lnL = sum_o [sum_i ln(T_o (N0 E^-gamma aeff_o psf_o + beta b_o)) - T_o (N0 A_o + beta B_o)],
// each integral by simpson_log on its own: the fitter's per-bin model is that sum.
TEST_F(Dl3Fit, LogLikelihoodIsTheSumOverObservations) {
  const binflow::science::BinFitter fitter(responses_, settings_);
  EXPECT_EQ(fitter.observations(), 2U);
  const double n0 = 4e-11;
  const double gamma = 2.3;
  const double beta = 1.2;
  double expected = 0.0;
  std::size_t first = 0;
  for (const auto& part : events_.parts) {
    const dl3::ObservationResponse& r = responses_[part.observation];
    for (std::size_t i = first; i < first + part.count; ++i) {
      const double e = events_.energy[i];
      expected += std::log(part.livetime * (n0 * std::pow(e, -gamma) * r.aeff(e) *
                                                r.psf_density(e, events_.theta[i]) +
                                            beta * r.bkg_rate_per_livetime(e)));
    }
    first += part.count;
    const double a = binflow::science::simpson_log(
        [&](double e) { return std::pow(e, -gamma) * r.aeff(e) * r.psf_containment(e, 0.2); },
        settings_.emin, settings_.emax);
    const double b = pi * 0.04 *
                     binflow::science::simpson_log(
                         [&](double e) { return r.bkg_rate_per_livetime(e); }, settings_.emin,
                         settings_.emax);
    expected -= part.livetime * (n0 * a + beta * b);
  }
  for (const int threads : {1, 2}) {
    EXPECT_NEAR(fitter.log_likelihood(events_, n0, gamma, beta, threads), expected,
                1e-11 * std::abs(expected));
  }
}

// Splitting an observation's events and livetime into two parts changes nothing; the fit
// is the same bits for 1 and 2 threads; gradient zero at the optimum.
TEST_F(Dl3Fit, FitIsAdditiveOverPartsAndThreadIndependent) {
  binflow::science::FitSettings free = settings_;
  free.free_index = true;
  const binflow::science::BinFitter fitter(responses_, free);
  const binflow::science::FitResult whole = fitter.fit(events_, 1);
  ASSERT_EQ(whole.status, "ok") << whole.message;
  EXPECT_EQ(whole.n_events, 40);
  EXPECT_DOUBLE_EQ(whole.livetime, 800.0);
  const binflow::science::FitResult two = fitter.fit(events_, 2);
  EXPECT_EQ(two.n0, whole.n0);
  EXPECT_EQ(two.n0_ul, whole.n0_ul);

  binflow::science::RoiEvents split;
  const auto& p0 = events_.parts[0];
  for (std::size_t half : {std::size_t{0}, std::size_t{1}}) {
    binflow::science::RoiEvents piece;
    const std::size_t lo = half == 0 ? 0 : p0.count / 2;
    const std::size_t hi = half == 0 ? p0.count / 2 : p0.count;
    piece.energy.assign(events_.energy.begin() + lo, events_.energy.begin() + hi);
    piece.theta.assign(events_.theta.begin() + lo, events_.theta.begin() + hi);
    piece.livetime = p0.livetime / 2;
    split.append_part(0, piece);
  }
  binflow::science::RoiEvents rest;
  rest.energy.assign(events_.energy.begin() + p0.count, events_.energy.end());
  rest.theta.assign(events_.theta.begin() + p0.count, events_.theta.end());
  rest.livetime = events_.parts[1].livetime;
  split.append_part(1, rest);
  const binflow::science::FitResult same = fitter.fit(split, 1);
  EXPECT_NEAR(same.n0, whole.n0, 1e-9 * whole.n0);
  EXPECT_NEAR(same.gamma, whole.gamma, 1e-9);
  EXPECT_NEAR(same.beta, whole.beta, 1e-9 * whole.beta);
  EXPECT_NEAR(same.ts, whole.ts, 1e-7 * whole.ts);
  EXPECT_NEAR(same.n0_ul, whole.n0_ul, 1e-8 * whole.n0_ul);

  const auto d = fitter.derivatives(events_, whole.n0, whole.gamma, whole.beta, 1);
  EXPECT_NEAR(d.gradient[0] * whole.n0_err, 0.0, 1e-6);
  EXPECT_NEAR(d.gradient[1] * whole.gamma_err, 0.0, 1e-6);
  // beta sits on its bound 0 here (the made-up events look like the source): no zero there.
  EXPECT_TRUE(whole.beta == 0.0 || std::abs(d.gradient[2] * whole.beta_err) < 1e-6);
  EXPECT_NEAR(d.lnl, whole.lnl, 1e-9 * std::abs(whole.lnl));
}

// A part without events still adds exposure: a bin whose second observation saw nothing
// predicts more counts than the first observation alone.
TEST_F(Dl3Fit, EmptyPartAddsExposure) {
  const binflow::science::BinFitter fitter(responses_, settings_);
  binflow::science::RoiEvents first;
  first.energy.assign(events_.energy.begin(), events_.energy.begin() + events_.parts[0].count);
  first.theta.assign(events_.theta.begin(), events_.theta.begin() + events_.parts[0].count);
  first.livetime = events_.parts[0].livetime;
  binflow::science::RoiEvents with_empty;
  with_empty.append_part(0, first);
  binflow::science::RoiEvents nothing;
  nothing.livetime = 1000.0;
  with_empty.append_part(1, nothing);
  const auto alone = fitter.fit(first, 1);
  const auto both = fitter.fit(with_empty, 1);
  ASSERT_EQ(both.status, "ok");
  EXPECT_EQ(both.n_events, alone.n_events);
  EXPECT_LT(both.n0, alone.n0);
  EXPECT_LT(both.n0_ul, alone.n0_ul);
  // Parts that do not add up are the caller's bug.
  binflow::science::RoiEvents broken = with_empty;
  broken.parts[0].count -= 1;
  EXPECT_THROW((void)fitter.fit(broken, 1), binflow::InternalError);
}
