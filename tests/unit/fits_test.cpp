// The cfitsio wrapper: a table written and read back bit for bit (numbers, text, logicals,
// array cells with TDIM, units, keywords), and the one-line messages that name the file,
// the HDU and the column or keyword for what the user got wrong.
#include "science/fits.hpp"

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "binflow/error.hpp"
#include "temp_dir.hpp"
#include "usage_message.hpp"

namespace {

namespace fs = std::filesystem;
using binflow::fits::File;

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  std::string bytes(static_cast<std::size_t>(in.tellg()), '\0');
  in.seekg(0);
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return bytes;
}

using binflow::testing_support::usage_message;

class FitsFile : public binflow::testing_support::TempDirTest {
protected:
  // EVENTS with TIME (s), ENERGY (TeV), a 2x3 array column, text and logicals.
  std::string write_sample() const {
    const std::string p = path("sample.fits");
    File f = File::create(p);
    f.create_table("EVENTS",
                   {{"TIME", "D", "s"},
                    {"ENERGY", "E", "TeV"},
                    {"EVENT_ID", "K", ""},
                    {"NAME", "8A", ""},
                    {"IS_UL", "L", ""}},
                   3);
    f.write_column("TIME", std::vector<double>{0.1, 1e9 + 0.25, -3.5});
    f.write_column("ENERGY", std::vector<double>{0.5, 1.0, 100.0});
    f.write_column("EVENT_ID", std::vector<std::int64_t>{1, 2, std::int64_t{1} << 40});
    f.write_column("NAME", std::vector<std::string>{"a", "crab", ""});
    f.write_logicals("IS_UL", {true, false, true});
    f.write_key("MJDREFI", std::int64_t{51910});
    f.write_key("MJDREFF", 7.428703703703703e-4, "fraction of the day");
    f.write_key("TIMESYS", std::string("TT"));
    f.write_key("CREATOR", std::string(100, 'x'));
    f.create_table("IRF", {{"EFFAREA", "6D", "m2"}}, 1);
    f.write_column("EFFAREA", std::vector<double>{1, 2, 3, 4, 5, 6});
    f.close();
    return p;
  }
};

TEST_F(FitsFile, TableRoundTrip) {
  const std::string p = write_sample();
  EXPECT_TRUE(binflow::fits::has_fits_signature(p));
  File f = File::open(p);
  EXPECT_TRUE(f.has_hdu("EVENTS"));
  EXPECT_TRUE(f.has_hdu("events"));  // EXTNAME is case-insensitive
  EXPECT_FALSE(f.has_hdu("GTI"));
  f.move_to("EVENTS");
  EXPECT_EQ(f.hdu(), "EVENTS");
  EXPECT_EQ(f.rows(), 3);
  EXPECT_EQ(f.read_doubles("TIME"), (std::vector<double>{0.1, 1e9 + 0.25, -3.5}));
  EXPECT_EQ(f.read_doubles("TIME", 1, 2), (std::vector<double>{1e9 + 0.25, -3.5}));
  EXPECT_EQ(f.read_doubles("energy"), (std::vector<double>{0.5, 1.0, 100.0}));  // from float
  EXPECT_EQ(f.read_int64s("EVENT_ID"), (std::vector<std::int64_t>{1, 2, std::int64_t{1} << 40}));
  EXPECT_EQ(f.read_strings("NAME"), (std::vector<std::string>{"a", "crab", ""}));
  EXPECT_EQ(f.read_logicals("IS_UL"), (std::vector<bool>{true, false, true}));
  EXPECT_EQ(f.column_unit("TIME"), "s");
  EXPECT_EQ(f.column_unit("EVENT_ID"), "");
  EXPECT_EQ(f.key_int("MJDREFI"), 51910);
  EXPECT_EQ(f.key_double("MJDREFF"), 7.428703703703703e-4);
  EXPECT_EQ(f.key_string("TIMESYS"), "TT");
  EXPECT_EQ(f.key_string("CREATOR"), std::string(100, 'x'));
  EXPECT_FALSE(f.key_double("LIVETIME").has_value());
  f.move_to("IRF");
  EXPECT_EQ(f.cell_size("EFFAREA"), 6);
  EXPECT_EQ(f.read_doubles("EFFAREA"), (std::vector<double>{1, 2, 3, 4, 5, 6}));
}

TEST_F(FitsFile, MessagesNameFileHduAndItem) {
  const std::string p = write_sample();
  File f = File::open(p);
  EXPECT_EQ(usage_message([&] { f.move_to("GTI"); }), p + ": no HDU GTI");
  f.move_to("EVENTS");
  EXPECT_EQ(usage_message([&] { (void)f.read_doubles("RA"); }), p + "[EVENTS]: no column RA");
  EXPECT_EQ(usage_message([&] { (void)f.require_double("LIVETIME"); }),
            p + "[EVENTS]: header keyword LIVETIME is missing");
  EXPECT_EQ(usage_message([&] { (void)f.read_doubles("TIME", 2, 5); }),
            p + "[EVENTS] TIME: rows [2, 7) are outside the 3 rows");
  EXPECT_EQ(usage_message([&] { (void)f.read_strings("TIME"); }),
            p + "[EVENTS] TIME: is not a text column");
  // A keyword of the wrong type: cfitsio's own reason, after the file, HDU and keyword.
  const std::string wrong = usage_message([&] { (void)f.key_double("TIMESYS"); });
  EXPECT_EQ(wrong.rfind(p + "[EVENTS] TIMESYS: fits_read_key failed: ", 0), 0U) << wrong;
}

TEST_F(FitsFile, RefusesWhatIsNotFits) {
  const std::string missing = path("missing.fits");
  EXPECT_EQ(usage_message([&] { (void)File::open(missing); }),
            missing + ": cannot open: No such file or directory");
  const std::string text = path("list.txt");
  std::ofstream(text) << "obs1.fits\n";
  EXPECT_FALSE(binflow::fits::has_fits_signature(text));
  EXPECT_EQ(usage_message([&] { (void)File::open(text); }), text + ": not a FITS file");
  // A truncated FITS file: the signature is there, the header is not.
  const std::string cut = path("cut.fits");
  std::ofstream(cut) << "SIMPLE  =                    T";
  const std::string message = usage_message([&] { (void)File::open(cut); });
  EXPECT_EQ(message.rfind(cut + ": fits_open_file failed: ", 0), 0U) << message;
}

TEST_F(FitsFile, HdusByIndexColumnPositionsAndTdim) {
  const std::string p = path("cube.fits");
  {
    File f = File::create(p);
    f.create_table("A", {{"X", "D", ""}}, 1);
    f.create_table("CUBE", {{"ENERG_LO", "3D", "TeV"}, {"DATA", "12D", "m2"}}, 1);
    f.write_column("DATA", std::vector<double>(12, 1.0));
    f.write_tdim("DATA", {3, 4});
    f.close();
  }
  File f = File::open(p);
  EXPECT_EQ(f.hdu_count(), 3);
  f.move_to(2);
  EXPECT_EQ(f.hdu(), "CUBE");
  EXPECT_EQ(f.cell_dims("DATA"), (std::vector<std::int64_t>{3, 4}));
  EXPECT_EQ(f.cell_size("DATA"), 12);
  EXPECT_EQ(f.column_position("ENERG_LO"), 1);
  EXPECT_EQ(f.column_position("data"), 2);
  EXPECT_EQ(usage_message([&] { (void)f.column_position("Y"); }), p + "[CUBE]: no column Y");
  f.move_to(0);
  EXPECT_EQ(f.hdu(), "PRIMARY");
  EXPECT_EQ(usage_message([&] { f.move_to(3); }), p + ": no HDU number 3");
}

TEST_F(FitsFile, CreateRefusesAnExistingFile) {
  const std::string p = write_sample();
  EXPECT_THROW((void)File::create(p), binflow::IoError);
  // ... and left it as it was.
  File f = File::open(p);
  f.move_to("EVENTS");
  EXPECT_EQ(f.rows(), 3);
}

TEST_F(FitsFile, HierarchAndLongStringKeywordsReadBack) {
  const std::string p = path("keys.fits");
  const std::string command_line =
      "/work/build/bin/binflow lightcurve inobs=/data/runs/crab_2004_it's_long.h5 tbins=48 "
      "outfile=/results/lightcurves/crab_flare_48_bins.fits confidence=0.99 '' end";
  {
    File f = File::create(p);
    f.write_key("emin", std::string("0.1"));
    f.write_key("free_index", std::string("yes"));
    f.write_key("command_line", std::string("placeholder"));
    f.write_key("command_line", command_line);  // replaces, continued over CONTINUE cards
    f.write_key("cmdline", command_line);       // the same through cfitsio's own writer
    f.write_key("ts_fraction_above_2.706", 0.049983);
    f.write_key("threads_per_rank", std::int64_t{3});
    f.write_key("quote_on_edge", std::string(56, 'q') + "'" + std::string(70, 'r'));
    f.write_key("empty_value", std::string());
    f.write_key("accents", std::string("lumi\xc3\xa8re\t"));
    f.close();
  }
  File f = File::open(p);
  EXPECT_EQ(f.key_string("EMIN"), "0.1");
  EXPECT_EQ(f.key_string("free_index"), "yes");  // names are case-insensitive
  EXPECT_EQ(f.key_string("COMMAND_LINE"), command_line);
  EXPECT_EQ(f.key_string("CMDLINE"), command_line);
  EXPECT_EQ(f.key_double("TS_FRACTION_ABOVE_2.706"), 0.049983);
  EXPECT_EQ(f.key_int("THREADS_PER_RANK"), 3);
  EXPECT_EQ(f.key_string("QUOTE_ON_EDGE"), std::string(56, 'q') + "'" + std::string(70, 'r'));
  EXPECT_EQ(f.key_string("EMPTY_VALUE"), "");
  EXPECT_EQ(f.key_string("ACCENTS"), "lumi??re?");  // a header holds printable ASCII only
  // One card per keyword: the replaced value left nothing behind.
  const std::string bytes = file_bytes(p);
  EXPECT_EQ(bytes.find("placeholder"), std::string::npos);
  EXPECT_NE(bytes.find("HIERARCH COMMAND_LINE = '"), std::string::npos);
}

TEST_F(FitsFile, ArrayCellsOfOneElementAndColumnComments) {
  const std::string p = path("dims.fits");
  {
    File f = File::create(p);
    f.create_table("LIGHTCURVE",
                   {{"time_min", "D", "d", {}, "bin start, MJD"},
                    {"flux", "D", "cm-2 s-1", {1}, "integral flux"},
                    {"counts", "K", "", {1, 1}},
                    {"is_ul", "L", "", {1}}},
                   2);
    f.write_column("time_min", std::vector<double>{51544.5, 51544.75});
    f.write_column("flux", std::vector<double>{1e-11, 2e-11});
    f.write_column("counts", std::vector<std::int64_t>{7, 8});
    f.write_logicals("is_ul", {false, true});
    f.close();
  }
  File f = File::open(p);
  f.move_to("LIGHTCURVE");
  EXPECT_EQ(f.cell_dims("time_min"), (std::vector<std::int64_t>{1}));
  EXPECT_FALSE(f.key_string("TDIM1").has_value());  // a scalar column has no TDIM
  EXPECT_EQ(f.key_string("TDIM2"), "(1)");
  EXPECT_EQ(f.key_string("TDIM3"), "(1,1)");
  EXPECT_EQ(f.cell_dims("counts"), (std::vector<std::int64_t>{1, 1}));
  EXPECT_EQ(f.read_doubles("flux"), (std::vector<double>{1e-11, 2e-11}));
  EXPECT_EQ(f.read_int64s("counts"), (std::vector<std::int64_t>{7, 8}));
  const std::string bytes = file_bytes(p);
  EXPECT_NE(bytes.find("/ bin start, MJD"), std::string::npos);
  EXPECT_NE(bytes.find("/ integral flux"), std::string::npos);
}

TEST_F(FitsFile, NamesAreTakenLiterallyAndGzNamesCompressed) {
  // Brackets and parentheses would be cfitsio's extended file-name syntax.
  const std::string odd = path("lc[1](a).fits");
  const std::string gz = path("lc.fits.tmp.42.gz");
  for (const std::string& p : {odd, gz}) {
    File f = File::create(p);
    f.create_table("FIT", {{"ts", "D", ""}}, 1);
    f.write_column("ts", std::vector<double>{25.5});
    f.close();
  }
  EXPECT_TRUE(fs::exists(odd));
  EXPECT_EQ(file_bytes(odd).substr(0, 9), "SIMPLE  =");
  const std::string bytes = file_bytes(gz);
  ASSERT_GE(bytes.size(), 2U);
  EXPECT_EQ(static_cast<unsigned char>(bytes[0]), 0x1f);  // gzip
  EXPECT_EQ(static_cast<unsigned char>(bytes[1]), 0x8b);
  EXPECT_FALSE(fs::exists(gz + ".part"));
  File f = File::open(gz);  // cfitsio reads it back transparently
  f.move_to("FIT");
  EXPECT_EQ(f.read_doubles("ts"), (std::vector<double>{25.5}));
}

}  // namespace
