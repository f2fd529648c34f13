// The GADF writer of the fitting tools: columns copied, renamed and shaped as Gammapy's
// readers want them, the derived columns (sqrt_ts, is_ul, success), the provenance header
// with the HDF5 attribute names, and the clashes that must not pass silently.
#include "tools/fits_results.hpp"

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "binflow/error.hpp"
#include "science/fits.hpp"
#include "temp_dir.hpp"

namespace {

namespace fs = std::filesystem;
using binflow::ColumnType;
using binflow::InternalError;
using binflow::Schema;
using binflow::Table;
using binflow::ToolOutput;
using binflow::apps::FitsHeader;
using binflow::apps::FitsTable;
using binflow::fits::File;

constexpr double nan = std::numeric_limits<double>::quiet_NaN();

// A light curve of three bins: a detection, an upper limit, a failed bin.
Table light_curve() {
  Table table(Schema{{"bin", ColumnType::i64, "", "global bin index"},
                     {"mjd_start", ColumnType::f64, "d", "bin start, MJD"},
                     {"mjd_stop", ColumnType::f64, "d", "bin stop, MJD"},
                     {"n_events", ColumnType::i64, "", "events"},
                     {"npred", ColumnType::f64, "", "predicted counts"},
                     {"flux", ColumnType::f64, "ph cm^-2 s^-1", "integral flux"},
                     {"flux_err", ColumnType::f64, "ph cm^-2 s^-1", ""},
                     {"flux_ul", ColumnType::f64, "ph cm^-2 s^-1", ""},
                     {"ts", ColumnType::f64, "", ""},
                     {"N0", ColumnType::f64, "ph cm^-2 s^-1 TeV^-1", ""},
                     {"status", ColumnType::str, "", ""},
                     {"message", ColumnType::str, "", ""}});
  table.append({std::int64_t{0}, 51544.5, 51544.6, std::int64_t{120}, 120.0, 2e-11, 1e-12, 2.2e-11,
                30.25, 1e-11, std::string("ok"), std::string()});
  table.append({std::int64_t{1}, 51544.6, 51544.7, std::int64_t{7}, 7.0, 1e-13, 2e-12, 4e-12, 1.0,
                5e-14, std::string("ok"), std::string()});
  table.append({std::int64_t{2}, 51544.7, 51544.8, std::int64_t{9}, 9.0, nan, nan, nan, nan, nan,
                std::string("failed"), std::string("did not converge")});
  return table;
}

binflow::RunProvenance provenance() {
  binflow::RunProvenance p;
  p.tool = "lightcurve";
  p.version = "0.1.0";
  p.command_line = "binflow lightcurve inobs=obs.h5 outfile=lc.fits " + std::string(90, 'x');
  p.start_time = "2026-01-01T00:00:00Z";
  p.end_time = "2026-01-01T00:00:01Z";
  p.ranks = 4;
  p.threads = 2;
  p.schedule = "dynamic";
  p.parameters = {{"inobs", "obs.h5"}, {"free_index", "no"}, {"confidence", "0.95"}};
  return p;
}

class FitsResults : public binflow::testing_support::TempDirTest {
protected:
};

TEST_F(FitsResults, FluxCurveHasGammapysColumnsAndEveryOther) {
  ToolOutput out;
  out.table = light_curve();
  const std::string p = path("lc.fits");
  binflow::apps::write_flux_curve(
      p, out, provenance(),
      {"LIGHTCURVE", "mjd_start", "mjd_stop", "time_min", "time_max", 0.1, 100.0, 0.95,
       binflow::apps::FitsTimeReference{51544.5, "TT"}});
  File f = File::open(p);
  f.move_to("LIGHTCURVE");
  EXPECT_EQ(f.rows(), 3);
  EXPECT_EQ(f.read_doubles("time_min"), (std::vector<double>{51544.5, 51544.6, 51544.7}));
  EXPECT_EQ(f.cell_dims("flux"), (std::vector<std::int64_t>{1}));
  EXPECT_EQ(f.cell_dims("counts"), (std::vector<std::int64_t>{1, 1}));
  EXPECT_EQ(f.read_int64s("counts"), (std::vector<std::int64_t>{120, 7, 9}));
  EXPECT_EQ(f.read_doubles("e_max"), (std::vector<double>{100.0, 100.0, 100.0}));
  EXPECT_EQ(f.column_unit("flux"), "ph cm-2 s-1");
  EXPECT_EQ(f.column_unit("N0"), "ph cm-2 s-1 TeV-1");
  const std::vector<double> sqrt_ts = f.read_doubles("sqrt_ts");
  EXPECT_EQ(sqrt_ts[0], 5.5);
  EXPECT_EQ(sqrt_ts[1], 1.0);
  EXPECT_TRUE(std::isnan(sqrt_ts[2]));
  EXPECT_EQ(f.read_strings("message"), (std::vector<std::string>{"", "", "did not converge"}));
  // Renamed columns are not there twice.
  EXPECT_FALSE(f.has_column("mjd_start"));
  EXPECT_FALSE(f.has_column("n_events"));
  EXPECT_EQ(f.key_string("SED_TYPE"), "flux");
  EXPECT_EQ(f.key_double("UL_CONF"), 0.95);
  EXPECT_EQ(f.key_string("TIMESYS"), "tt");
  EXPECT_EQ(f.key_int("MJDREFI"), 51544);
  EXPECT_EQ(f.key_double("MJDREFF"), 0.5);
  EXPECT_EQ(f.key_string("FREE_INDEX"), "no");
  EXPECT_EQ(f.key_string("COMMAND_LINE"), provenance().command_line);
  EXPECT_EQ(f.key_int("RANKS"), 4);
  EXPECT_EQ(f.key_int("THREADS_PER_RANK"), 2);
  EXPECT_EQ(f.key_string("CREATOR"), "binflow 0.1.0");
}

TEST_F(FitsResults, IsUlAndSuccessFollowGammapysRules) {
  ToolOutput out;
  out.table = light_curve();
  const std::string p = path("flags.fits");
  binflow::apps::write_flux_curve(p, out, provenance(),
                                  {"PHASECURVE", "mjd_start", "mjd_stop", "phase_min", "phase_max",
                                   0.1, 100.0, 0.9, std::nullopt});
  File f = File::open(p);
  f.move_to("PHASECURVE");
  // TS 30 is a detection, TS 1 an upper limit; without a limit, no upper limit.
  EXPECT_EQ(f.read_logicals("is_ul"), (std::vector<bool>{false, true, false}));
  EXPECT_EQ(f.read_logicals("success"), (std::vector<bool>{true, true, false}));
  EXPECT_FALSE(f.key_string("TIMESYS").has_value());
}

TEST_F(FitsResults, ClashesAreInternalErrors) {
  const Table table = light_curve();
  FitsTable twice(table);
  twice.copy("flux");
  EXPECT_THROW(twice.copy("ts", "FLUX"), InternalError);  // FITS names ignore case
  FitsTable unknown(table);
  EXPECT_THROW(unknown.copy("nosuch"), InternalError);
  File f = File::create(path("header.fits"));
  FitsHeader header(f);
  header.key("SED_TYPE", std::string("flux"), "");
  EXPECT_THROW(header.key("sed_type", std::string("dnde"), ""), InternalError);
  ToolOutput out;
  out.attributes = {{"tool", "spoof"}};  // an attribute named like a provenance record
  EXPECT_THROW(header.provenance(provenance(), out), InternalError);
}

}  // namespace
