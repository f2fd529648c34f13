// The report page's data: Table::read as the inverse of Table::write (order, kinds, units),
// read_report_data on a file laid out as the driver writes it, the JSON the page's script
// reads (escaping, non-finite numbers, integers beyond 2^53), the assembled page, and the
// RunMonitor the dashboard and the progress line read.
#include "binflow/report_page.hpp"

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include <gtest/gtest.h>

#include "binflow/error.hpp"
#include "binflow/h5.hpp"
#include "binflow/run_monitor.hpp"
#include "binflow/run_stats.hpp"
#include "temp_dir.hpp"

namespace {

using binflow::ColumnType;
using binflow::Schema;
using binflow::Table;

class ReportPage : public binflow::testing_support::TempDirTest {};

Table results() {
  Table t(Schema{{"zeta", ColumnType::f64, "ph cm^-2 s^-1", "a flux"},
                 {"alpha", ColumnType::i64, "", "counts"},
                 {"status", ColumnType::str, "", ""}});
  t.append({1.5, std::int64_t{3}, std::string("ok")});
  t.append({std::numeric_limits<double>::quiet_NaN(), (std::int64_t{1} << 60) + 1,
            std::string("a </script> \"quoted\"\n")});
  return t;
}

// What the driver writes: /results with attributes, /run with its attributes and tables.
void write_output(const std::string& path) {
  binflow::h5::Location file = binflow::h5::create_file(path);
  {
    const auto group = file.create_group("results");
    results().write(group);
    group.write_attribute("tool", std::string_view("lightcurve"));
    group.write_attribute("tbins", std::string_view("2"));
    group.write_attribute("ranks", std::int64_t{2});
    binflow::RunStats stats;
    stats.wall = 2.0;
    stats.bins = {{.index = 0, .rank = 1, .start = 0.1, .end = 0.5, .wall = 0.4},
                  {.index = 1, .rank = 0, .start = 0.0, .end = 1.0, .wall = 1.0}};
    stats.ranks = {{.rank = 0, .busy = 1.0, .bins = 1}, {.rank = 1, .busy = 0.4, .bins = 1}};
    const auto run = file.create_group("run");
    run.write_attribute("wall", stats.wall);
    stats.bins_table().write(run.create_group("bins"));
    stats.ranks_table().write(run.create_group("ranks"));
  }
  file.close();
}

TEST_F(ReportPage, TableReadIsTheInverseOfWriteInColumnOrder) {
  const std::string path = this->path("t.h5");
  {
    binflow::h5::Location file = binflow::h5::create_file(path);
    results().write(file.create_group("results"));
    file.close();
  }
  const Table back = Table::read(binflow::h5::open_file(path).open_group("results"));
  ASSERT_EQ(back.schema().size(), 3U);
  EXPECT_EQ(back.schema().columns()[0].name, "zeta");  // written first, not sorted by name
  EXPECT_EQ(back.schema().columns()[0].unit, "ph cm^-2 s^-1");
  EXPECT_EQ(back.schema().columns()[0].description, "a flux");
  EXPECT_EQ(back.schema().columns()[1].type, ColumnType::i64);
  EXPECT_EQ(back.schema().columns()[2].type, ColumnType::str);
  ASSERT_EQ(back.size(), 2U);
  EXPECT_EQ(back.f64(0, "zeta"), 1.5);
  EXPECT_TRUE(std::isnan(back.f64(1, "zeta")));
  EXPECT_EQ(back.i64(1, "alpha"), (std::int64_t{1} << 60) + 1);
  EXPECT_EQ(back.str(1, "status"), "a </script> \"quoted\"\n");
}

TEST_F(ReportPage, ReadsAnOutputAndWritesTheJsonThePageReads) {
  const std::string path = this->path("lc.h5");
  write_output(path);
  const binflow::ReportData data = binflow::read_report_data(path);
  EXPECT_EQ(data.tool, "lightcurve");
  EXPECT_EQ(data.source, "lc.h5");
  ASSERT_EQ(data.attributes.size(), 3U);
  EXPECT_EQ(data.attributes[0].first, "tool");  // in the order written
  EXPECT_EQ(data.attributes[2].second, "2");    // an integer attribute as text
  EXPECT_EQ(data.bins.size(), 2U);
  EXPECT_EQ(data.ranks.i64(1, "bins"), 1);
  const std::string json = binflow::report_json(data);
  EXPECT_NE(json.find(R"("values":[1.5,null])"), std::string::npos) << json;
  // Beyond 2^53 an integer travels as text, exactly.
  EXPECT_NE(json.find(R"("1152921504606846977")"), std::string::npos);
  EXPECT_EQ(json.find("</script"), std::string::npos);
  EXPECT_NE(json.find(R"(a \u003c/script> \"quoted\"\n)"), std::string::npos);
}

TEST_F(ReportPage, RefusesFilesThatAreNotOutputs) {
  const std::string path = this->path("events.h5");
  {
    binflow::h5::Location file = binflow::h5::create_file(path);
    file.create_group("events").write("time", std::vector<double>{1.0});
    file.close();
  }
  EXPECT_THROW(static_cast<void>(binflow::read_report_data(path)), binflow::UsageError);
  EXPECT_THROW(static_cast<void>(binflow::read_report_data(this->path("missing.h5"))),
               binflow::UsageError);
}

TEST(ReportPageAssembly, InlinesEverythingAndTheData) {
  const std::string page = binflow::report_page(R"({"live":null,"tool":"x"})", "a <b> & c");
  EXPECT_EQ(page.find("<!--binflow:"), std::string::npos);
  EXPECT_NE(
      page.find(
          R"(<script type="application/json" id="binflow-data">{"live":null,"tool":"x"}</script>)"),
      std::string::npos);
  EXPECT_NE(page.find("<title>a &lt;b> &amp; c</title>"), std::string::npos);
  EXPECT_NE(page.find("plotly.js v3.1.1"), std::string::npos);  // the pinned library, inlined
  EXPECT_EQ(page.find("<script src"), std::string::npos);
  EXPECT_GT(page.size(), 4'000'000U);
}

TEST(RunMonitor, CountsCompletedBinsAndEstimatesTheRest) {
  binflow::RunMonitor monitor;
  monitor.bin_completed({.index = 9}, "ok");  // before record_bins(): counted, not kept
  EXPECT_TRUE(monitor.bins_since(0).empty());
  monitor.record_bins();
  EXPECT_EQ(monitor.snapshot().total, 0);
  monitor.map_started("bins", 10, 2, 3);
  binflow::RunSnapshot s = monitor.snapshot();
  EXPECT_EQ(s.done, 2);   // resumed bins count as done
  EXPECT_LT(s.eta, 0.0);  // unknown before a bin of this run completed
  EXPECT_EQ(s.ranks_working, 3);
  monitor.bin_completed({.index = 4, .rank = 1, .start = 0.5, .end = 0.7}, "ok");
  monitor.bin_completed({.index = 5, .rank = 2}, "failed");
  monitor.rank_finished();
  s = monitor.snapshot();
  EXPECT_EQ(s.done, 4);
  EXPECT_EQ(s.failed, 1);
  EXPECT_EQ(s.ranks_working, 2);
  EXPECT_GE(s.eta, 0.0);
  const auto bins = monitor.bins_since(1);
  ASSERT_EQ(bins.size(), 1U);
  EXPECT_EQ(bins[0].stats.index, 5);
  EXPECT_EQ(bins[0].status, "failed");
  EXPECT_TRUE(monitor.bins_since(2).empty());
  // Start and end move to the run's clock: the map began at or after the monitor.
  EXPECT_GE(monitor.bins_since(0)[0].stats.start, 0.5);
  const std::uint64_t before = s.version;
  monitor.run_finished();
  s = monitor.snapshot();
  EXPECT_TRUE(s.finished);
  EXPECT_GT(s.version, before);
}

}  // namespace
