// Result tables: schema checks that catch a tool's wrong row early, typed accessors, the
// console rendering, and the HDF5 layout (one dataset per column with unit and description).
#include "binflow/table.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "binflow/error.hpp"
#include "binflow/h5.hpp"

namespace {

namespace fs = std::filesystem;
using binflow::Cell;
using binflow::Column;
using binflow::ColumnType;
using binflow::InternalError;
using binflow::Row;
using binflow::Schema;
using binflow::Table;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

Schema lightcurve_schema() {
  return Schema{{"flux", ColumnType::f64, "ph cm^-2 s^-1", "integral flux above emin"},
                {"npred", ColumnType::i64, "", "predicted counts"},
                {"status", ColumnType::str, "", "fit status"}};
}

TEST(Schema, AddAndIndexOf) {
  Schema schema = lightcurve_schema();
  schema.add({"ts", ColumnType::f64, "", "test statistic"});
  ASSERT_EQ(schema.size(), 4U);
  EXPECT_EQ(schema.columns()[3].name, "ts");
  EXPECT_EQ(schema.index_of("flux"), 0U);
  EXPECT_EQ(schema.index_of("npred"), 1U);
  EXPECT_EQ(schema.index_of("status"), 2U);
  EXPECT_EQ(schema.index_of("ts"), 3U);
  EXPECT_THROW((void)schema.index_of("Flux"), InternalError);
  EXPECT_THROW((void)schema.index_of(""), InternalError);
  try {
    (void)schema.index_of("eflux");
    FAIL() << "no InternalError";
  } catch (const InternalError& e) {
    EXPECT_NE(std::string(e.what()).find("eflux"), std::string::npos) << e.what();
  }
}

TEST(Schema, BlankRowHasTheColumnTypes) {
  const Schema schema = lightcurve_schema();
  const Row row = schema.blank_row();
  ASSERT_EQ(row.size(), 3U);
  ASSERT_TRUE(std::holds_alternative<double>(row[0]));
  EXPECT_TRUE(std::isnan(std::get<double>(row[0])));
  ASSERT_TRUE(std::holds_alternative<std::int64_t>(row[1]));
  EXPECT_EQ(std::get<std::int64_t>(row[1]), 0);
  ASSERT_TRUE(std::holds_alternative<std::string>(row[2]));
  EXPECT_EQ(std::get<std::string>(row[2]), "");
  EXPECT_NO_THROW(schema.check(row));
  EXPECT_TRUE(Schema{}.blank_row().empty());
}

TEST(Schema, CheckRejectsWrongLengthAndWrongCellTypes) {
  const Schema schema = lightcurve_schema();
  EXPECT_NO_THROW(schema.check({1.0, std::int64_t{2}, std::string("ok")}));

  EXPECT_THROW(schema.check({}), InternalError);
  EXPECT_THROW(schema.check({1.0, std::int64_t{2}}), InternalError);
  EXPECT_THROW(schema.check({1.0, std::int64_t{2}, std::string("ok"), 4.0}), InternalError);

  // Every cell in turn given each wrong type.
  const std::vector<Cell> samples = {2.5, std::int64_t{7}, std::string("x")};
  for (std::size_t column = 0; column < 3; ++column) {
    for (std::size_t type = 0; type < 3; ++type) {
      if (type == column) continue;
      Row row = schema.blank_row();
      row[column] = samples[type];
      SCOPED_TRACE(fmt::format("column {} holding type {}", column, type));
      try {
        schema.check(row);
        ADD_FAILURE() << "no InternalError";
      } catch (const InternalError& e) {
        EXPECT_NE(std::string(e.what()).find(schema.columns()[column].name), std::string::npos)
            << e.what();
      }
    }
  }
  // An int where a double belongs is a bug too, not a silent conversion.
  EXPECT_THROW(schema.check({std::int64_t{1}, std::int64_t{2}, std::string()}), InternalError);
}

TEST(Table, AppendChecksAndAccessorsReadBack) {
  Table table(lightcurve_schema());
  EXPECT_EQ(table.size(), 0U);
  table.append({1.5e-11, std::int64_t{42}, std::string("ok")});
  table.append({kNaN, std::int64_t{-1}, std::string("failed")});
  EXPECT_THROW(table.append({1.0, 2.0, std::string("bad")}), InternalError);
  EXPECT_THROW(table.append({1.0}), InternalError);
  ASSERT_EQ(table.size(), 2U);  // rejected rows are not kept
  EXPECT_EQ(table.rows().size(), 2U);
  EXPECT_EQ(table.schema().size(), 3U);

  EXPECT_EQ(table.f64(0, "flux"), 1.5e-11);
  EXPECT_TRUE(std::isnan(table.f64(1, "flux")));
  EXPECT_EQ(table.i64(0, "npred"), 42);
  EXPECT_EQ(table.i64(1, "npred"), -1);
  EXPECT_EQ(table.str(0, "status"), "ok");
  EXPECT_EQ(table.str(1, "status"), "failed");

  EXPECT_THROW((void)table.f64(0, "nosuch"), InternalError);
  EXPECT_ANY_THROW((void)table.f64(2, "flux"));  // no such row
  EXPECT_ANY_THROW((void)table.i64(0, "flux"));  // wrong type for the column
  EXPECT_ANY_THROW((void)table.str(0, "npred"));
}

TEST(Table, ToTextRightAlignsColumnsWithSixSignificantDigits) {
  Table table(Schema{{"x", ColumnType::f64, "", ""},
                     {"count", ColumnType::i64, "", ""},
                     {"status", ColumnType::str, "", ""}});
  table.append({3.14159265358979, std::int64_t{7}, std::string("ok")});
  table.append({-12345678.9, std::int64_t{1234567}, std::string("failed")});
  table.append({kNaN, std::int64_t{0}, std::string("")});
  EXPECT_EQ(table.to_text(),
            "           x    count  status\n"
            "     3.14159        7      ok\n"
            "-1.23457e+07  1234567  failed\n"
            "         nan        0        \n");

  // Every line is as wide as the header: the columns line up.
  std::istringstream lines(table.to_text());
  std::string line;
  std::getline(lines, line);
  const std::size_t width = line.size();
  while (std::getline(lines, line)) EXPECT_EQ(line.size(), width) << line;
}

TEST(Table, ToTextEllipsisAfterMaxRows) {
  Table table(Schema{{"bin", ColumnType::i64, "", ""}});
  for (std::int64_t i = 0; i < 10; ++i) table.append({i * 100});
  // Only the shown rows set the width.
  EXPECT_EQ(table.to_text(3),
            "bin\n"
            "  0\n"
            "100\n"
            "200\n"
            "... 7 more rows\n");
  EXPECT_EQ(table.to_text(10), table.to_text());
  EXPECT_EQ(table.to_text(11), table.to_text());
  EXPECT_EQ(table.to_text().find("more rows"), std::string::npos);
  EXPECT_EQ(table.to_text(9).substr(table.to_text(9).rfind("...")), "... 1 more rows\n");
}

TEST(Table, EmptyTableShowsItsHeader) {
  Table table(lightcurve_schema());
  EXPECT_EQ(table.to_text(), "flux  npred  status\n");
}

// The console view a tool chooses: value +- error in one aligned cell, "fixed" for a held
// quantity, enough digits to tell adjacent bin edges apart, optional columns left out.
Table fit_table() {
  Table table(Schema{{"bin", ColumnType::i64, "", ""},
                     {"mjd_start", ColumnType::f64, "d", ""},
                     {"N0", ColumnType::f64, "", ""},
                     {"N0_err", ColumnType::f64, "", ""},
                     {"gamma", ColumnType::f64, "", ""},
                     {"gamma_err", ColumnType::f64, "", ""},
                     {"beta", ColumnType::f64, "", ""},
                     {"beta_err", ColumnType::f64, "", ""},
                     {"status", ColumnType::str, "", ""},
                     {"message", ColumnType::str, "", ""}});
  table.append({std::int64_t{0}, 51544.5, 3.64925e-11, 1.32226e-12, 2.5, kNaN, 0.932002, 0.037508,
                std::string("ok"), std::string()});
  table.append({std::int64_t{1}, 51544.5 + 1200.0 / 86400.0, 0.0, 1.5e-12, 2.5, kNaN, 1.01, 0.0494,
                std::string("ok"), std::string()});
  table.append({std::int64_t{2}, 51544.5 + 2400.0 / 86400.0, 4.0e-11, kNaN, 2.5, kNaN, 1.2, kNaN,
                std::string("ok"), std::string()});
  return table;
}

TEST(Table, ConsoleViewPairsValuesWithErrorsAndSaysFixed) {
  const Table table = fit_table();
  const std::vector<binflow::TextColumn> view{
      {.name = "bin"},
      {.name = "mjd_start", .distinct = true},
      {.name = "N0", .error = "N0_err"},
      {.name = "gamma", .error = "gamma_err", .fixed = true},
      {.name = "beta", .error = "beta_err"},
      {.name = "status"},
      {.name = "message", .optional = true}};
  EXPECT_EQ(table.to_text(view),
            "bin  mjd_start                   N0      gamma            beta  status\n"
            "  0   51544.50  3.65e-11 +- 1.3e-12  2.5 fixed  0.932 +- 0.038      ok\n"
            "  1   51544.51         0 +- 1.5e-12  2.5 fixed  1.010 +- 0.049      ok\n"
            "  2   51544.53     4e-11 +-     nan  2.5 fixed    1.2 +-   nan      ok\n");
  // An optional column with something in it is shown; without a view, every column.
  Table failed = fit_table();
  failed.append({std::int64_t{3}, 51544.55, kNaN, kNaN, 2.5, kNaN, kNaN, kNaN,
                 std::string("failed"), std::string("no convergence")});
  EXPECT_NE(failed.to_text(view).find("no convergence"), std::string::npos);
  EXPECT_EQ(table.to_text(std::vector<binflow::TextColumn>{}), table.to_text());
  EXPECT_EQ(table.to_text(view, 1).substr(table.to_text(view, 1).rfind("...")),
            "... 2 more rows\n");
}

TEST(Table, ConsoleDistinctDigitsTellShortBinsApart) {
  Table table(Schema{{"mjd", ColumnType::f64, "d", ""}, {"x", ColumnType::f64, "", ""}});
  for (int i = 0; i < 3; ++i) table.append({51544.5 + i / 86400.0, 51544.5 + i / 86400.0});
  EXPECT_EQ(table.to_text({{.name = "mjd", .distinct = true}, {.name = "x"}}),
            "        mjd        x\n"
            "51544.50000  51544.5\n"
            "51544.50001  51544.5\n"
            "51544.50002  51544.5\n");
  // Equal neighbours need no digits; 6 stay the minimum, without trailing zeros.
  Table phases(Schema{{"phase", ColumnType::f64, "", ""}});
  for (const double x : {0.0, 0.25, 0.25, 1.0}) phases.append({x});
  EXPECT_EQ(phases.to_text({{.name = "phase", .distinct = true}}),
            "phase\n    0\n 0.25\n 0.25\n    1\n");
}

TEST(Table, ConsoleViewNamesWhatItCannotShow) {
  const Table table = fit_table();
  EXPECT_THROW((void)table.to_text({{.name = "flux"}}), InternalError);
  EXPECT_THROW((void)table.to_text({{.name = "bin", .error = "N0_err"}}), InternalError);
  EXPECT_THROW((void)table.to_text({{.name = "N0", .error = "nosuch"}}), InternalError);
}

class TableH5 : public testing::Test {
protected:
  void SetUp() override {
    dir_ = fs::path(testing::TempDir()) / fmt::format("binflow_table_test_{}", ::getpid());
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  fs::path dir_;
};

// A dataset as a Location: attribute access is the same for any HDF5 object.
binflow::h5::Location dataset(const binflow::h5::Location& group, const std::string& name) {
  return {binflow::h5::Handle(binflow::h5::check_h5(H5Dopen2(group.id(), name.c_str(), H5P_DEFAULT),
                                                    "H5Dopen2", name),
                              H5Dclose),
          group.name() + "/" + name};
}

TEST_F(TableH5, WriteStoresOneDatasetPerColumnWithAttributes) {
  Table table(lightcurve_schema());
  table.append({1.5e-11, std::int64_t{42}, std::string("ok")});
  table.append({kNaN, std::int64_t{-1}, std::string("failed: no events")});
  table.append({-0.0, std::numeric_limits<std::int64_t>::max(), std::string("")});
  const std::string path = (dir_ / "out.h5").string();
  {
    auto file = binflow::h5::create_file(path);
    {
      auto group = file.create_group("results");
      table.write(group);
      group.close();
    }
    file.close();
  }
  auto file = binflow::h5::open_file(path);
  auto group = file.open_group("results");
  const auto flux = group.read_doubles("flux");
  ASSERT_EQ(flux.size(), 3U);
  EXPECT_EQ(flux[0], 1.5e-11);
  EXPECT_TRUE(std::isnan(flux[1]));
  EXPECT_EQ(flux[2], 0.0);
  EXPECT_TRUE(std::signbit(flux[2]));
  EXPECT_EQ(group.read_ints("npred"),
            (std::vector<std::int64_t>{42, -1, std::numeric_limits<std::int64_t>::max()}));
  EXPECT_EQ(group.read_strings("status"),
            (std::vector<std::string>{"ok", "failed: no events", ""}));

  {
    const auto d = dataset(group, "flux");
    EXPECT_EQ(d.read_string_attribute("unit"), "ph cm^-2 s^-1");
    EXPECT_EQ(d.read_string_attribute("description"), "integral flux above emin");
  }
  {
    // Dimensionless: no unit attribute, the description is still there.
    const auto d = dataset(group, "npred");
    EXPECT_FALSE(d.has_attribute("unit"));
    EXPECT_EQ(d.read_string_attribute("description"), "predicted counts");
  }
  {
    const auto d = dataset(group, "status");
    EXPECT_EQ(d.read_string_attribute("description"), "fit status");
  }
}

TEST_F(TableH5, EmptyTableWritesEmptyColumns) {
  Table table(lightcurve_schema());
  const std::string path = (dir_ / "empty.h5").string();
  {
    auto file = binflow::h5::create_file(path);
    table.write(file);
    file.close();
  }
  auto file = binflow::h5::open_file(path);
  EXPECT_EQ(file.extent("flux"), 0);
  EXPECT_TRUE(file.read_doubles("flux").empty());
  EXPECT_TRUE(file.read_ints("npred").empty());
  EXPECT_TRUE(file.read_strings("status").empty());
}

}  // namespace
