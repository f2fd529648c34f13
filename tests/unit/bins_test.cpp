// Bin plans: every factory, exact end edges, stable indices, and the text of every error a
// user can meet (the message is the user interface).
#include "binflow/bins.hpp"

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
#include "science/binning.hpp"
#include "temp_dir.hpp"
#include "usage_message.hpp"

namespace {

namespace science = binflow::science;
using binflow::BinPlan;
namespace fs = std::filesystem;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// The exact message of the UsageError that `fn` throws ("" if it throws none).
using binflow::testing_support::usage_message;

// Indices 0..n-1 in order, every bin non-empty, neighbours sharing their edge exactly.
void expect_contiguous(const BinPlan& plan) {
  for (std::size_t i = 0; i < plan.size(); ++i) {
    EXPECT_EQ(plan[i].index, static_cast<std::int64_t>(i));
    EXPECT_LT(plan[i].lo, plan[i].hi) << "bin " << i;
    if (i > 0) {
      EXPECT_EQ(plan[i].lo, plan[i - 1].hi) << "bin " << i;
    }
  }
}

class BinFile : public binflow::testing_support::TempDirTest {
protected:
  std::string write(const std::string& text, const std::string& name = "bins.txt") const {
    const fs::path path = dir_ / name;
    std::ofstream(path, std::ios::binary) << text;
    return path.string();
  }
};

// ---- LIN time bins ----

TEST(TimeLinear, EqualBinsWithExactEnds) {
  const BinPlan plan = science::time_linear(0.0, 10.0, 4);
  ASSERT_EQ(plan.size(), 4U);
  EXPECT_EQ(plan.axis().name, "time");
  EXPECT_EQ(plan.axis().name, "time");
  EXPECT_EQ(plan.axis().unit, "s");
  const std::vector<double> edges = {0.0, 2.5, 5.0, 7.5, 10.0};
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(plan[i].lo, edges[i]);
    EXPECT_EQ(plan[i].hi, edges[i + 1]);
  }
  expect_contiguous(plan);
}

TEST(TimeLinear, EndsAreExactForMissionElapsedTimes) {
  // MET values near 6e8 s: tmin + (tmax - tmin) * n / n need not round back to tmax.
  const double tmin = 600000000.123;
  const double tmax = 600086400.789;
  for (std::int64_t n : {1, 3, 7, 97, 1000}) {
    const BinPlan plan = science::time_linear(tmin, tmax, n);
    ASSERT_EQ(plan.size(), static_cast<std::size_t>(n));
    EXPECT_EQ(plan.bins().front().lo, tmin);
    EXPECT_EQ(plan.bins().back().hi, tmax);
    expect_contiguous(plan);
  }
}

TEST(TimeLinear, SameArgumentsSameBins) {
  const BinPlan a = science::time_linear(1.0, 2.0, 33);
  const BinPlan b = science::time_linear(1.0, 2.0, 33);
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].index, b[i].index);
    EXPECT_EQ(a[i].lo, b[i].lo);
    EXPECT_EQ(a[i].hi, b[i].hi);
  }
}

TEST(TimeLinear, RejectsBadArguments) {
  EXPECT_EQ(usage_message([] { science::time_linear(5.0, 3.0, 2); }),
            "tmin (5) must be less than tmax (3)");
  EXPECT_EQ(usage_message([] { science::time_linear(3.0, 3.0, 2); }),
            "tmin (3) must be less than tmax (3)");
  EXPECT_EQ(usage_message([] { science::time_linear(0.0, 1.0, 0); }),
            "tbins must be at least 1, got 0");
  EXPECT_EQ(usage_message([] { science::time_linear(kNaN, 1.0, 1); }),
            "tmin must be a finite number, got nan");
  EXPECT_EQ(usage_message([] { science::time_linear(0.0, kInf, 1); }),
            "tmax must be a finite number, got inf");
  EXPECT_NE(usage_message([] {
              science::time_linear(1e9, 1e9 + 1e-6, 100000);
            }).find("tbins = 100000 is too many"),
            std::string::npos);
}

// ---- GTI time bins ----

TEST(TimeFromGtis, ClipsDropsAndRenumbers) {
  const std::vector<double> start = {0.0, 20.0, 40.0, 45.0, 60.0, 90.0};
  const std::vector<double> stop = {10.0, 30.0, 45.0, 45.0, 80.0, 100.0};
  const BinPlan plan = science::time_from_gtis(start, stop, 25.0, 70.0);
  // [0,10) and [90,100) lie outside, [45,45) is empty, [20,30) and [60,80) are clipped.
  ASSERT_EQ(plan.size(), 3U);
  EXPECT_EQ(plan.axis().name, "time");
  EXPECT_EQ(plan[0].lo, 25.0);
  EXPECT_EQ(plan[0].hi, 30.0);
  EXPECT_EQ(plan[1].lo, 40.0);
  EXPECT_EQ(plan[1].hi, 45.0);
  EXPECT_EQ(plan[2].lo, 60.0);
  EXPECT_EQ(plan[2].hi, 70.0);
  for (std::size_t i = 0; i < plan.size(); ++i)
    EXPECT_EQ(plan[i].index, static_cast<std::int64_t>(i));
}

TEST(TimeFromGtis, HalfOpenEdgesTouchingTheRangeAreDropped) {
  const std::vector<double> start = {0.0, 10.0, 20.0};
  const std::vector<double> stop = {10.0, 20.0, 30.0};
  const BinPlan plan = science::time_from_gtis(start, stop, 10.0, 20.0);
  ASSERT_EQ(plan.size(), 1U);
  EXPECT_EQ(plan[0].lo, 10.0);
  EXPECT_EQ(plan[0].hi, 20.0);
}

TEST(TimeFromGtis, RejectsBadGtis) {
  const std::vector<double> one = {1.0};
  const std::vector<double> two = {1.0, 2.0};
  EXPECT_EQ(usage_message([&] { science::time_from_gtis(one, two, 0.0, 10.0); }),
            "GTIs have 1 start times but 2 stop times");
  const std::vector<double> reversed_start = {0.0, 5.0};
  const std::vector<double> reversed_stop = {1.0, 3.0};
  EXPECT_EQ(
      usage_message([&] { science::time_from_gtis(reversed_start, reversed_stop, 0.0, 10.0); }),
      "GTI 1: [5, 3) has start > stop");
  const std::vector<double> overlap_start = {0.0, 3.0};
  const std::vector<double> overlap_stop = {5.0, 8.0};
  EXPECT_EQ(usage_message([&] { science::time_from_gtis(overlap_start, overlap_stop, 0.0, 10.0); }),
            "GTI 1: GTIs overlap or are out of order (starts at 3 before the previous stop 5)");
  EXPECT_EQ(usage_message([&] { science::time_from_gtis(one, one, 0.0, 10.0); }),
            "no good time interval overlaps [tmin, tmax) = [0, 10) (1 GTIs)");
  EXPECT_EQ(usage_message([&] { science::time_from_gtis(one, one, 5.0, 1.0); }),
            "tmin (5) must be less than tmax (1)");
  const std::vector<double> nan_start = {kNaN};
  EXPECT_EQ(usage_message([&] { science::time_from_gtis(nan_start, one, 0.0, 10.0); }),
            "GTI 0 start must be a finite number, got nan");
}

// ---- LOG energy bins ----

TEST(EnergyLog, LogSpacedWithExactEnds) {
  for (std::int64_t n : {1, 5, 20, 37}) {
    const BinPlan plan = science::energy_log(0.1, 100.0, n);
    ASSERT_EQ(plan.size(), static_cast<std::size_t>(n));
    EXPECT_EQ(plan.axis().name, "energy");
    EXPECT_EQ(plan.axis().unit, "TeV");
    EXPECT_EQ(plan.bins().front().lo, 0.1);
    EXPECT_EQ(plan.bins().back().hi, 100.0);
    expect_contiguous(plan);
    const double ratio = std::pow(1000.0, 1.0 / static_cast<double>(n));
    for (const auto& bin : plan) EXPECT_NEAR(bin.hi / bin.lo, ratio, 1e-12 * ratio);
  }
  const BinPlan decades = science::energy_log(0.1, 100.0, 3);
  EXPECT_NEAR(decades[1].lo, 1.0, 1e-15);
  EXPECT_NEAR(decades[2].lo, 10.0, 1e-14);
}

TEST(EnergyLog, RejectsBadArguments) {
  EXPECT_EQ(usage_message([] { science::energy_log(0.0, 100.0, 5); }),
            "emin must be above 0 TeV, got 0");
  EXPECT_EQ(usage_message([] { science::energy_log(-1.0, 100.0, 5); }),
            "emin must be above 0 TeV, got -1");
  EXPECT_EQ(usage_message([] { science::energy_log(10.0, 1.0, 5); }),
            "emin (10) must be less than emax (1)");
  EXPECT_EQ(usage_message([] { science::energy_log(0.1, kInf, 5); }),
            "emax must be a finite number, got inf");
  EXPECT_EQ(usage_message([] { science::energy_log(0.1, 100.0, -3); }),
            "enumbins must be at least 1, got -3");
}

// ---- phase bins and trials ----

TEST(Phase, EqualBinsCoveringTheUnitInterval) {
  const BinPlan plan = science::phase_bins(4);
  ASSERT_EQ(plan.size(), 4U);
  EXPECT_EQ(plan.axis().name, "phase");
  EXPECT_EQ(plan.axis().name, "phase");
  EXPECT_EQ(plan.axis().unit, "");
  EXPECT_EQ(plan[0].lo, 0.0);
  EXPECT_EQ(plan[1].lo, 0.25);
  EXPECT_EQ(plan[3].hi, 1.0);
  expect_contiguous(plan);
  EXPECT_EQ(science::phase_bins(7).bins().back().hi, 1.0);
  EXPECT_EQ(usage_message([] { science::phase_bins(0); }), "phbins must be at least 1, got 0");
}

TEST(Trials, OneBinPerTrialNumber) {
  const BinPlan plan = BinPlan::trials(5);
  ASSERT_EQ(plan.size(), 5U);
  EXPECT_EQ(plan.axis().name, "trial");
  EXPECT_EQ(plan.axis().name, "trial");
  EXPECT_EQ(plan.axis().unit, "");
  for (std::size_t k = 0; k < plan.size(); ++k) {
    EXPECT_EQ(plan[k].index, static_cast<std::int64_t>(k));
    EXPECT_EQ(plan[k].lo, static_cast<double>(k));
    EXPECT_EQ(plan[k].hi, static_cast<double>(k));
  }
  EXPECT_EQ(usage_message([] { BinPlan::trials(0); }), "ntrials must be at least 1, got 0");
}

// ---- explicit lists ----

TEST(FromEdges, KeepsOrderAndAssignsIndices) {
  const std::vector<double> lo = {1.0, 2.0, 5.0};
  const std::vector<double> hi = {2.0, 4.0, 6.0};
  const BinPlan plan = BinPlan::from_edges(science::energy_axis(), lo, hi);
  ASSERT_EQ(plan.size(), 3U);
  EXPECT_EQ(plan.axis().name, "energy");
  EXPECT_EQ(plan[2].index, 2);
  EXPECT_EQ(plan[2].lo, 5.0);
  EXPECT_FALSE(plan.empty());
  EXPECT_TRUE(BinPlan::from_edges(science::time_axis(), {}, {}).empty());
}

TEST(FromEdges, RejectsBadLists) {
  const std::vector<double> two = {1.0, 2.0};
  const std::vector<double> one = {3.0};
  EXPECT_EQ(usage_message([&] { BinPlan::from_edges(science::time_axis(), two, one); }),
            "bin edges: 2 lower edges but 1 upper edges");
  const std::vector<double> lo = {0.0, 1.0};
  const std::vector<double> hi = {2.0, 3.0};
  EXPECT_EQ(usage_message([&] { BinPlan::from_edges(science::time_axis(), lo, hi); }),
            "bin 1: bins overlap or are out of order (starts at 1 before the previous stop 2)");
  EXPECT_EQ(usage_message([&] { BinPlan::from_edges(science::time_axis(), hi, lo); }),
            "bin 0: bin [2, 0) has start >= stop");
  EXPECT_EQ(usage_message([&] { BinPlan::from_edges(science::energy_axis(), lo, hi); }),
            "bin 0: energy bin [0, 2) must start above 0 TeV");
  EXPECT_EQ(usage_message([&] { BinPlan::from_edges(science::phase_axis(), lo, hi); }),
            "bin 0: phase bin [0, 2) is not within [0, 1]");
  EXPECT_EQ(usage_message([&] { BinPlan::from_edges(binflow::Axis::trials(), lo, hi); }),
            "bin 0: trial [0, 2] must have lo = hi, increasing");
  const std::vector<double> nan = {kNaN};
  EXPECT_EQ(usage_message([&] { BinPlan::from_edges(science::time_axis(), nan, one); }),
            "bin 0 start must be a finite number, got nan");
}

// ---- files ----

TEST_F(BinFile, ReadsCommentsBlankLinesTabsAndCrlf) {
  const std::string path = write(
      "# light-curve bins, MET s\n"
      "\n"
      "  0   10   # first\n"
      "10\t20.5\r\n"
      "   \n"
      "+25 3e1\n"
      "# trailing comment");
  const BinPlan plan = science::time_from_file(path);
  ASSERT_EQ(plan.size(), 3U);
  EXPECT_EQ(plan.axis().name, "time");
  EXPECT_EQ(plan[0].lo, 0.0);
  EXPECT_EQ(plan[0].hi, 10.0);
  EXPECT_EQ(plan[1].lo, 10.0);
  EXPECT_EQ(plan[1].hi, 20.5);
  EXPECT_EQ(plan[2].index, 2);
  EXPECT_EQ(plan[2].lo, 25.0);
  EXPECT_EQ(plan[2].hi, 30.0);
}

TEST_F(BinFile, EnergyAndPhaseFiles) {
  const BinPlan energy = science::energy_from_file(write("0.1 1\n1 10\n", "ebins.txt"));
  EXPECT_EQ(energy.axis().name, "energy");
  ASSERT_EQ(energy.size(), 2U);
  EXPECT_EQ(energy[1].hi, 10.0);
  const BinPlan phase = science::phase_from_file(write("0 0.3\n0.5 1\n", "phbins.txt"));
  EXPECT_EQ(phase.axis().name, "phase");
  ASSERT_EQ(phase.size(), 2U);
  EXPECT_EQ(phase[1].lo, 0.5);
}

TEST_F(BinFile, NamesFileAndLineForContentErrors) {
  const std::string bad = write("# header\n0 1\n\n# more\n1 2\n2 3\nabc\n");
  EXPECT_EQ(usage_message([&] { science::time_from_file(bad); }),
            bad + ":7: expected two numbers 'start stop', got 'abc'");
  const std::string one = write("1\n");
  EXPECT_EQ(usage_message([&] { science::time_from_file(one); }),
            one + ":1: expected two numbers 'start stop', got '1'");
  const std::string three = write("1 2 3\n");
  EXPECT_EQ(usage_message([&] { science::time_from_file(three); }),
            three + ":1: expected two numbers 'start stop', got '1 2 3'");
  const std::string trailing = write("1 2x\n");
  EXPECT_EQ(usage_message([&] { science::time_from_file(trailing); }),
            trailing + ":1: expected two numbers 'start stop', got '1 2x'");
  const std::string nan = write("nan 2\n");
  EXPECT_EQ(usage_message([&] { science::time_from_file(nan); }),
            nan + ":1: expected two numbers 'start stop', got 'nan 2'");
  const std::string reversed = write("0 1\n1 2\n2 3\n3 4\n4 5\n\n\n#\n5 3\n");
  EXPECT_EQ(usage_message([&] { science::time_from_file(reversed); }),
            reversed + ":9: bin [5, 3) has start >= stop");
  const std::string overlap = write("0 1\n1 2\n2 3\n3 4\n4 5\n\n\n#\n3 6\n");
  EXPECT_EQ(
      usage_message([&] { science::time_from_file(overlap); }),
      overlap + ":9: bins overlap or are out of order (starts at 3 before the previous stop 5)");
  const std::string energy = write("0 1\n");
  EXPECT_EQ(usage_message([&] { science::energy_from_file(energy); }),
            energy + ":1: energy bin [0, 1) must start above 0 TeV");
  const std::string energy_text = write("x\n");
  EXPECT_EQ(usage_message([&] { science::energy_from_file(energy_text); }),
            energy_text + ":1: expected two numbers 'emin emax', got 'x'");
  const std::string phase = write("0.5 1.5\n");
  EXPECT_EQ(usage_message([&] { science::phase_from_file(phase); }),
            phase + ":1: phase bin [0.5, 1.5) is not within [0, 1]");
}

TEST_F(BinFile, MissingEmptyAndDirectory) {
  const std::string missing = (dir_ / "nope.txt").string();
  EXPECT_EQ(usage_message([&] { science::time_from_file(missing); }),
            missing + ": cannot open (No such file or directory)");
  const std::string empty = write("");
  EXPECT_EQ(usage_message([&] { science::time_from_file(empty); }),
            empty +
                ": no bins (the file is empty or holds only comments); expected lines "
                "'start stop'");
  const std::string comments = write("# nothing here\n\n");
  EXPECT_NE(usage_message([&] { science::phase_from_file(comments); }).find(": no bins"),
            std::string::npos);
  EXPECT_EQ(usage_message([&] { science::time_from_file(dir_.string()); }),
            dir_.string() + ": cannot open (Is a directory)");
}

}  // namespace
