// Event files read serially (files built here with the serial HDF5 calls, so every defect can
// be planted), the default observation, time profiles, the spectrum sampler and the
// in-memory simulator. The collective writer is tested in tests/mpi/event_writer_test.cpp.
#include "science/event_file.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <numbers>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "binflow/error.hpp"
#include "binflow/h5.hpp"
#include "science/geometry.hpp"
#include "science/gti.hpp"
#include "science/integrate.hpp"
#include "science/response.hpp"
#include "science/simulate.hpp"
#include "usage_message.hpp"

namespace {

namespace fs = std::filesystem;
using binflow::UsageError;
using binflow::science::default_observation;
using binflow::science::EventFileReader;
using binflow::science::Events;
using binflow::science::EventsView;
using binflow::science::Observation;
using binflow::science::Response;
using binflow::science::SourceModel;
using binflow::science::TimeProfile;

constexpr double inf = std::numeric_limits<double>::infinity();
constexpr double nan = std::numeric_limits<double>::quiet_NaN();

class TempDir {
public:
  TempDir()
      : dir_(fs::temp_directory_path() / ("binflow_event_file_" + std::to_string(::getpid()))) {
    fs::create_directories(dir_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  [[nodiscard]] std::string path(const std::string& name) const { return (dir_ / name).string(); }

private:
  fs::path dir_;
};

const TempDir& temp() {
  static const TempDir dir;
  return dir;
}

// Times 0, 0.5, 1, ... with a repeated value every 10th row (ties must all be kept).
Events ramp(std::size_t n) {
  Events ev;
  for (std::size_t i = 0; i < n; ++i) {
    const auto k = static_cast<double>(i - (i % 10 == 9 ? 1 : 0));
    ev.time.push_back(0.5 * k);
    ev.energy.push_back(0.1 + 1e-3 * static_cast<double>(i % 1000));
    ev.ra.push_back(83.6 + 1e-6 * static_cast<double>(i % 777));
    ev.dec.push_back(22.0 - 1e-6 * static_cast<double>(i % 555));
  }
  return ev;
}

// What write_file leaves out or spoils.
struct Defects {
  std::function<void(Observation&, Events&)> edit;
  std::string skip_dataset;    // e.g. "/events/ra"
  std::string skip_attribute;  // e.g. "mjdref"
  std::string format = "eventlist";
  std::int64_t version = 1;
};

Defects editing(std::function<void(Observation&, Events&)> edit) {
  Defects d;
  d.edit = std::move(edit);
  return d;
}
Defects without_dataset(std::string name) {
  Defects d;
  d.skip_dataset = std::move(name);
  return d;
}
Defects without_attribute(std::string name) {
  Defects d;
  d.skip_attribute = std::move(name);
  return d;
}
Defects with_format(std::string format, std::int64_t version) {
  Defects d;
  d.format = std::move(format);
  d.version = version;
  return d;
}

std::string write_file(const std::string& name, Events events, const Defects& defects = {}) {
  std::string path = temp().path(name);
  Observation obs = default_observation(1800.0);
  if (defects.edit) defects.edit(obs, events);
  binflow::h5::Location file = binflow::h5::create_file(path);
  const auto attribute = [&](const std::string& key, auto value) {
    if (key != defects.skip_attribute) file.write_attribute(key, value);
  };
  attribute("format", std::string_view(defects.format));
  attribute("format_version", defects.version);
  attribute("mjdref", obs.info.mjdref);
  attribute("object", std::string_view(obs.info.object));
  attribute("ra_pnt", obs.info.ra_pnt);
  attribute("dec_pnt", obs.info.dec_pnt);
  attribute("deadtime_fraction", obs.info.deadtime_fraction);
  const auto dataset = [&](const std::string& key, const std::vector<double>& values) {
    if (key != defects.skip_dataset) file.write(key, values);
  };
  dataset("/irf/energy", obs.irf.energy);
  dataset("/irf/aeff", obs.irf.aeff);
  dataset("/irf/psf_sigma", obs.irf.psf_sigma);
  dataset("/irf/bkg_rate", obs.irf.bkg_rate);
  dataset("/gti/start", obs.gti.start);
  dataset("/gti/stop", obs.gti.stop);
  dataset("/events/time", events.time);
  dataset("/events/energy", events.energy);
  dataset("/events/ra", events.ra);
  dataset("/events/dec", events.dec);
  file.close();
  return path;
}

// The message of the UsageError `fn` throws ("" if it throws none).
using binflow::testing_support::usage_message;

void expect_same(const Events& a, const Events& b) {
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(a.time, b.time);
  EXPECT_EQ(a.energy, b.energy);
  EXPECT_EQ(a.ra, b.ra);
  EXPECT_EQ(a.dec, b.dec);
}

Events slice_of(const Events& ev, double t0, double t1) {
  Events out;
  for (std::size_t i = 0; i < ev.size(); ++i) {
    if (ev.time[i] >= t0 && ev.time[i] < t1) {
      out.time.push_back(ev.time[i]);
      out.energy.push_back(ev.energy[i]);
      out.ra.push_back(ev.ra[i]);
      out.dec.push_back(ev.dec[i]);
    }
  }
  return out;
}

// ---- default observation ----

TEST(DefaultObservation, RunsOf1800sWith120sGapsCutAtTheEnd) {
  const Observation obs = default_observation(14400.0);
  ASSERT_EQ(obs.gti.size(), 8U);
  EXPECT_EQ(obs.gti.start[1], 1920.0);
  EXPECT_EQ(obs.gti.stop[1], 3720.0);
  EXPECT_EQ(obs.gti.start[7], 13440.0);
  EXPECT_EQ(obs.gti.stop[7], 14400.0);
  EXPECT_DOUBLE_EQ(binflow::science::ontime(obs.gti, -inf, inf), 7 * 1800.0 + 960.0);
  EXPECT_NO_THROW(binflow::science::validate_gti(obs.gti, "default"));
  EXPECT_EQ(obs.info.deadtime_fraction, 0.05);
  EXPECT_EQ(obs.info.mjdref, 51544.5);
  EXPECT_EQ(obs.info.object, "Crab");
  EXPECT_EQ(obs.irf.energy.size(), 40U);

  const Observation one = default_observation(1800.0, 1000.0);
  ASSERT_EQ(one.gti.size(), 1U);
  EXPECT_EQ(one.gti.start[0], 1000.0);
  EXPECT_EQ(one.gti.stop[0], 2800.0);
  // A cut inside a gap adds no run.
  EXPECT_EQ(default_observation(1900.0).gti.size(), 1U);
  EXPECT_EQ(default_observation(1921.0).gti.size(), 2U);
  EXPECT_NE(usage_message([] { static_cast<void>(default_observation(0.0)); }).find("duration"),
            std::string::npos);
  EXPECT_FALSE(usage_message([] { static_cast<void>(default_observation(nan)); }).empty());
}

// ---- reader ----

TEST(EventFileReader, RoundTrip) {
  const Events ev = ramp(1000);
  const std::string path = write_file("round_trip.h5", ev);
  const EventFileReader reader(path);
  EXPECT_EQ(reader.size(), 1000);
  const Observation expected = default_observation(1800.0);
  EXPECT_EQ(reader.observation().gti.start, expected.gti.start);
  EXPECT_EQ(reader.observation().irf.aeff, expected.irf.aeff);
  EXPECT_EQ(reader.observation().info.ra_pnt, expected.info.ra_pnt);
  EXPECT_EQ(reader.observation().info.object, "Crab");
  expect_same(reader.read_time_range(-inf, inf), ev);
}

TEST(EventFileReader, TimeRangeIsHalfOpen) {
  const Events ev = ramp(100);  // ..., 3.5, 4.0, 4.0, 5.0, ... (rows 7 to 10)
  const EventFileReader reader(write_file("half_open.h5", ev));
  const Events a = reader.read_time_range(4.0, 5.0);
  ASSERT_EQ(a.size(), 2U);  // both rows at the start are in, the row at 5.0 is out
  EXPECT_EQ(a.time.front(), 4.0);
  EXPECT_EQ(a.time.back(), 4.0);
  expect_same(a, slice_of(ev, 4.0, 5.0));
  const Events b = reader.read_time_range(3.5, 4.0);
  ASSERT_EQ(b.size(), 1U);
  EXPECT_EQ(b.time.front(), 3.5);
  EXPECT_EQ(reader.read_time_range(4.0, 4.0).size(), 0U);
  EXPECT_EQ(reader.read_time_range(5.0, 4.0).size(), 0U);
  EXPECT_EQ(reader.read_time_range(-10.0, 0.0).size(), 0U);
  EXPECT_EQ(reader.read_time_range(-10.0, 0.25).size(), 1U);
  EXPECT_EQ(reader.read_time_range(1e9, 2e9).size(), 0U);
  EXPECT_EQ(reader.read_time_range(std::nextafter(4.0, 0.0), 4.0).size(), 0U);
  EXPECT_EQ(reader.read_time_range(4.0, std::nextafter(4.0, 5.0)).size(), 2U);
}

TEST(EventFileReader, BinarySearchReadsOnlyAFewRowsOfAManyChunkFile) {
  // 300k rows: 5 chunks of 64k.
  const Events ev = ramp(300000);
  const EventFileReader reader(write_file("chunks.h5", ev));
  ASSERT_EQ(reader.size(), 300000);
  for (const auto& [t0, t1] : {std::pair{0.0, 10.0},
                               {32767.5, 32800.0},
                               {70000.0, 70500.25},
                               {149990.0, 200000.0},
                               {-5.0, 1.0},
                               {12345.0, 12345.0}}) {
    const std::int64_t before = reader.time_rows_read();
    const Events got = reader.read_time_range(t0, t1);
    const std::int64_t read = reader.time_rows_read() - before;
    expect_same(got, slice_of(ev, t0, t1));
    // Two searches (one read of at most 1024 rows each), the range, and once the index of
    // one time per 1024 rows.
    EXPECT_LE(read, static_cast<std::int64_t>(got.size()) + std::int64_t{2} * 1024 + 300000 / 1024 + 1)
        << "[" << t0 << ", " << t1 << ")";
  }
}

// Ranges beyond 2^20 rows take the two-search path, smaller ones one read of their bracketed
// times; both give exactly the slice, and a view reused by the next read is overwritten.
TEST(EventFileReader, LargeAndSmallRangesGiveTheSameRows) {
  const Events ev = ramp(1200000);  // ramp: two rows per 0.5 s step
  const EventFileReader reader(write_file("large.h5", ev));
  for (const auto& [t0, t1] : {std::pair{-1.0, 1e9},
                               {100.0, 590000.0},
                               {1000.0, 290000.25},
                               {100.0, 100.5},
                               {10.0, 280000.0},
                               {599990.0, 1e9}}) {
    expect_same(reader.read_time_range(t0, t1), slice_of(ev, t0, t1));
  }
  const Events expected = slice_of(ev, 100.0, 103.0);
  EventFileReader::Buffers buffers;
  const EventsView small = reader.view_time_range(100.0, 103.0, {}, buffers);
  ASSERT_EQ(small.size(), expected.size());
  EXPECT_TRUE(std::equal(small.time.begin(), small.time.end(), expected.time.begin()));
  EXPECT_TRUE(std::equal(small.dec.begin(), small.dec.end(), expected.dec.begin()));
}

TEST(EventFileReader, EmptyEventList) {
  const EventFileReader reader(write_file("empty.h5", Events{}));
  EXPECT_EQ(reader.size(), 0);
  EXPECT_EQ(reader.read_time_range(-inf, inf).size(), 0U);
}

TEST(EventFileReader, MissingOrForeignFile) {
  const std::string missing = temp().path("missing.h5");
  std::string m = usage_message([&] { EventFileReader r(missing); });
  EXPECT_NE(m.find("missing.h5: no such file"), std::string::npos) << m;

  const std::string text = temp().path("text.h5");
  std::ofstream(text) << "time value\n1 2\n";
  m = usage_message([&] { EventFileReader r(text); });
  EXPECT_NE(m.find("text.h5: not an HDF5 file"), std::string::npos) << m;
}

struct DefectCase {
  std::string name;
  Defects defects;
  std::string expected;  // part of the message after the file name
};

TEST(EventFileReader, EveryDefectNamesFileAndDataset) {
  const std::vector<DefectCase> cases = {
      {"no_ra", without_dataset("/events/ra"), "dataset /events/ra is missing"},
      {"no_time", without_dataset("/events/time"), "dataset /events/time is missing"},
      {"no_gti", without_dataset("/gti/stop"), "dataset /gti/stop is missing"},
      {"no_aeff", without_dataset("/irf/aeff"), "dataset /irf/aeff is missing"},
      {"no_mjdref", without_attribute("mjdref"), "root attribute 'mjdref' is missing"},
      {"no_format", without_attribute("format"), "root attribute 'format' is missing"},
      {"wrong_format", with_format("ratemap", 1),
       "root attribute 'format' is 'ratemap', expected 'eventlist'"},
      {"wrong_version", with_format("eventlist", 2), "root attribute 'format_version' is 2"},
      {"overlap", editing([](Observation& o, Events&) {
         o.gti.start = {0.0, 100.0};
         o.gti.stop = {200.0, 300.0};
       }),
       "/gti: GTIs overlap"},
      {"bad_irf", editing([](Observation& o, Events&) { o.irf.energy[5] = o.irf.energy[4]; }),
       "/irf/energy is not strictly increasing (row 5)"},
      {"negative_aeff", editing([](Observation& o, Events&) { o.irf.aeff[3] = -1.0; }),
       "/irf/aeff must be finite and >= 0 (row 3)"},
      {"deadtime", editing([](Observation& o, Events&) { o.info.deadtime_fraction = 1.0; }),
       "root attribute 'deadtime_fraction' is 1"},
      {"short_dec", editing([](Observation&, Events& e) { e.dec.pop_back(); }),
       "dataset /events/dec has 99 rows but /events/ra has 100"},
  };
  for (const DefectCase& c : cases) {
    const std::string path = write_file(c.name + ".h5", ramp(100), c.defects);
    const std::string m = usage_message([&] { EventFileReader r(path); });
    EXPECT_EQ(m.find(path + ": "), 0U) << c.name << ": " << m;
    EXPECT_NE(m.find(c.expected), std::string::npos) << c.name << ": " << m;
  }
}

TEST(EventFileReader, RowDefectsAreFoundWhenRead) {
  const Defects unsorted =
      editing([](Observation&, Events& e) { e.time[1042] = e.time[1041] - 1.0; });
  const std::string p1 = write_file("unsorted.h5", ramp(5000), unsorted);
  const EventFileReader r1(p1);
  std::string m = usage_message([&] { static_cast<void>(r1.read_time_range(-inf, inf)); });
  EXPECT_EQ(m, p1 + ": /events/time is not sorted (row 1042 < row 1041)");

  const Defects nan_energy = editing([](Observation&, Events& e) { e.energy[17] = nan; });
  const std::string p2 = write_file("nan_energy.h5", ramp(100), nan_energy);
  const EventFileReader r2(p2);
  m = usage_message([&] { static_cast<void>(r2.read_time_range(0.0, 100.0)); });
  EXPECT_EQ(m, p2 + ": /events/energy is NaN at row 17");
  // A range that does not contain the bad row reads fine.
  EXPECT_EQ(r2.read_time_range(20.0, 30.0).size(), 20U);

  const Defects inf_dec = editing([](Observation&, Events& e) { e.dec[3] = inf; });
  const std::string p3 = write_file("inf_dec.h5", ramp(100), inf_dec);
  m = usage_message([&] { static_cast<void>(EventFileReader(p3).read_time_range(-inf, inf)); });
  EXPECT_EQ(m, p3 + ": /events/dec is +inf at row 3");

  const Defects nan_time = editing([](Observation&, Events& e) { e.time[50] = nan; });
  const std::string p4 = write_file("nan_time.h5", ramp(100), nan_time);
  m = usage_message([&] { static_cast<void>(EventFileReader(p4).read_time_range(-inf, inf)); });
  EXPECT_EQ(m, p4 + ": /events/time is NaN at row 50");
}

// ---- time profiles ----

TEST(TimeProfile, FlareIntegralAndMaximum) {
  const TimeProfile f = TimeProfile::flare(3.0, 1000.0, 100.0);
  EXPECT_DOUBLE_EQ(f(1000.0), 4.0);
  EXPECT_NEAR(f(1100.0), 1.0 + 3.0 * std::exp(-0.5), 1e-14);
  // Midpoint rule with 2e5 steps against the closed form, on both sides and across the peak.
  for (const auto& [a, b] :
       {std::pair{0.0, 2000.0}, {500.0, 900.0}, {1200.0, 5000.0}, {950.0, 1010.0}}) {
    const int n = 200000;
    double sum = 0.0;
    for (int i = 0; i < n; ++i) sum += f(a + (b - a) * (i + 0.5) / n);
    EXPECT_NEAR(f.integral(a, b), sum * (b - a) / n, 1e-6 * (b - a)) << a << " " << b;
  }
  EXPECT_DOUBLE_EQ(f.max(0.0, 500.0), f(500.0));
  EXPECT_DOUBLE_EQ(f.max(0.0, 5000.0), 4.0);
  EXPECT_DOUBLE_EQ(f.max(1500.0, 1600.0), f(1500.0));
  EXPECT_NE(
      usage_message([] { static_cast<void>(TimeProfile::flare(3.0, 0.0, 0.0)); }).find("width"),
      std::string::npos);
  EXPECT_NE(usage_message([] {
              static_cast<void>(TimeProfile::flare(-1.0, 0.0, 1.0));
            }).find("amplitude"),
            std::string::npos);
}

TEST(TimeProfile, TableIsPiecewiseLinearWithConstantEnds) {
  const std::string path = temp().path("profile.txt");
  std::ofstream(path) << "# time value\n\n100 1\n200, 3\n  300\t0  \n";
  const TimeProfile p = TimeProfile::from_file(path);
  EXPECT_EQ(p(0.0), 1.0);
  EXPECT_EQ(p(150.0), 2.0);
  EXPECT_EQ(p(250.0), 1.5);
  EXPECT_EQ(p(1000.0), 0.0);
  EXPECT_DOUBLE_EQ(p.integral(0.0, 400.0), 100.0 + 200.0 + 150.0 + 0.0);
  EXPECT_DOUBLE_EQ(p.integral(150.0, 250.0), 0.5 * (2.0 + 3.0) * 50.0 + 0.5 * (3.0 + 1.5) * 50.0);
  EXPECT_EQ(p.max(0.0, 150.0), 2.0);
  EXPECT_EQ(p.max(0.0, 1000.0), 3.0);
}

TEST(TimeProfile, TableErrorsNameFileAndLine) {
  const auto message = [](const std::string& name, const std::string& content) {
    const std::string path = temp().path(name);
    std::ofstream(path) << content;
    return usage_message([&] { static_cast<void>(TimeProfile::from_file(path)); });
  };
  EXPECT_NE(message("words.txt", "1 2\n# c\nabc 3\n").find("words.txt:3: expected two numbers"),
            std::string::npos);
  EXPECT_NE(message("three.txt", "1 2 3\n").find("three.txt:1:"), std::string::npos);
  EXPECT_NE(message("one.txt", "1 2\n5\n").find("one.txt:2:"), std::string::npos);
  EXPECT_NE(message("neg.txt", "1 2\n2 -0.5\n").find("neg.txt:2: f = -0.5 is negative"),
            std::string::npos);
  EXPECT_NE(message("order.txt", "1 2\n1 3\n").find("order.txt:2: time 1 does not come after"),
            std::string::npos);
  EXPECT_NE(message("nan.txt", "1 nan\n").find("nan.txt:1:"), std::string::npos);
  EXPECT_NE(message("none.txt", "# nothing\n").find("none.txt: no 'time value' lines"),
            std::string::npos);
  const std::string m =
      usage_message([] { static_cast<void>(TimeProfile::from_file(temp().path("absent.txt"))); });
  EXPECT_NE(m.find("absent.txt: cannot open"), std::string::npos) << m;
}

// ---- spectra ----

TEST(LogLogSpectrum, InversionMatchesTheCumulativeOfTheInterpolatedDensity) {
  const Response response(binflow::science::default_irf(), "default");
  const auto& irf = response.tables();
  // A falling density (E^-2.5 aeff) and a rising one (E^0.5 aeff: every cell rises).
  for (const double index : {2.5, -0.5}) {
    std::vector<double> log_density;
    for (std::size_t i = 0; i < irf.energy.size(); ++i) {
      // E^-index aeff per unit ln E (times E).
      log_density.push_back(std::log(irf.aeff[i]) + (1.0 - index) * std::log(irf.energy[i]));
    }
    const binflow::science::detail::LogLogSpectrum spectrum(irf.energy, log_density);
    const auto density = [&](double e) { return std::pow(e, -index) * response.aeff(e); };
    // Simpson cell by cell: the density is smooth inside a grid cell and has kinks at its ends.
    const auto integral_to = [&](double e) {
      double sum = 0.0;
      for (std::size_t i = 0; i + 1 < irf.energy.size() && irf.energy[i] < e; ++i) {
        sum += binflow::science::simpson_log(density, irf.energy[i], std::min(e, irf.energy[i + 1]),
                                             64);
      }
      return sum;
    };
    const double total = integral_to(irf.energy.back());
    EXPECT_NEAR(spectrum.total() / total, 1.0, 1e-10);
    for (const double u : {1e-9, 0.01, 0.2, 0.5, 0.77, 0.99, 1.0 - 1e-12}) {
      const double e = spectrum.sample(u);
      EXPECT_NEAR(integral_to(e) / total, u, 1e-10) << index << " " << u;
    }
    EXPECT_NEAR(spectrum.sample(1e-300), irf.energy.front(), 1e-15);
    EXPECT_LE(spectrum.sample(std::nextafter(1.0, 0.0)), irf.energy.back());
  }
}

// ---- in-memory simulation ----

TEST(Simulate, SlicesAreDeterministicSortedAndInsideGtis) {
  const Observation obs = default_observation(4000.0, 500.0);  // 3 GTIs, one in a partial slice
  const Response response(obs.irf, "default");
  const SourceModel model;
  const TimeProfile flare = TimeProfile::flare(5.0, 2000.0, 300.0);
  const binflow::science::Simulator sim(obs, response, model, flare, 60.0);
  EXPECT_EQ(sim.slices(), 67);  // ceil(4000 / 60)
  EXPECT_EQ(sim.slice_range(66).second, 4500.0);
  for (std::int64_t k = 0; k < sim.slices(); ++k) {
    const Events ev = sim.events(7, k);
    EXPECT_EQ(ev.size(), sim.counts(7, k).total()) << k;
    const auto [a, b] = sim.slice_range(k);
    for (std::size_t i = 0; i < ev.size(); ++i) {
      EXPECT_TRUE(binflow::science::in_gti(obs.gti, ev.time[i]));
      EXPECT_TRUE(ev.time[i] >= a && ev.time[i] < b);
      EXPECT_TRUE(i == 0 || ev.time[i] >= ev.time[i - 1]);
      EXPECT_TRUE(ev.energy[i] >= obs.irf.energy.front() && ev.energy[i] <= obs.irf.energy.back());
    }
  }
  const Events one = binflow::science::simulate_events(obs, response, model, flare, 7, 60.0, 1);
  const Events two = binflow::science::simulate_events(obs, response, model, flare, 7, 60.0, 2);
  expect_same(one, two);
  const Events other = binflow::science::simulate_events(obs, response, model, flare, 8, 60.0, 1);
  EXPECT_NE(one.time, other.time);
}

TEST(Simulate, CountsFollowTheModel) {
  // 1800 s: the region 0.2 deg, 0.1-100 TeV holds about 3800 source and 3800 background events
  // (SCIENCE.md section 4); checked against the Simpson-rule prediction of section 2.
  const Observation obs = default_observation(1800.0);
  const Response response(obs.irf, "default");
  const SourceModel model;
  const Events ev =
      binflow::science::simulate_events(obs, response, model, TimeProfile::constant(), 3, 60.0, 1);
  const double livetime = 1800.0 * 0.95;
  const double theta_max = 0.2;
  const double src = livetime * binflow::science::simpson_log(
                                    [&](double e) {
                                      const double s = response.psf_sigma(e);
                                      return model.n0 * std::pow(e, -model.gamma) *
                                             response.aeff(e) *
                                             (1.0 - std::exp(-theta_max * theta_max / (2 * s * s)));
                                    },
                                    0.1, 100.0);
  const double bkg =
      livetime * std::numbers::pi * theta_max * theta_max *
      binflow::science::simpson_log([&](double e) { return response.bkg_rate(e); }, 0.1, 100.0);
  EXPECT_NEAR(src, 3800.0, 300.0);
  EXPECT_NEAR(bkg, 3800.0, 300.0);
  double n = 0.0;
  for (std::size_t i = 0; i < ev.size(); ++i) {
    const double theta =
        binflow::science::angular_distance(ev.ra[i], ev.dec[i], model.ra, model.dec);
    if (theta < theta_max && ev.energy[i] >= 0.1 && ev.energy[i] <= 100.0) n += 1.0;
  }
  EXPECT_LT(std::abs(n - (src + bkg)), 5.0 * std::sqrt(src + bkg)) << n << " vs " << src + bkg;
}

TEST(Simulate, BadModelIsAUsageError) {
  const Observation obs = default_observation(1800.0);
  const Response response(obs.irf, "default");
  const auto with = [](const std::function<void(SourceModel&)>& edit) {
    SourceModel m;
    edit(m);
    return m;
  };
  const auto message = [&](const SourceModel& m, double slice = 60.0) {
    return usage_message([&] {
      const binflow::science::Simulator s(obs, response, m, TimeProfile::constant(), slice);
    });
  };
  EXPECT_NE(message(with([](SourceModel& m) { m.n0 = -1.0; })).find("N0"), std::string::npos);
  EXPECT_NE(message(with([](SourceModel& m) { m.beta = -1.0; })).find("beta"), std::string::npos);
  EXPECT_NE(message(with([](SourceModel& m) { m.theta_sim = 0.0; })).find("theta_sim"),
            std::string::npos);
  EXPECT_NE(message(SourceModel{}, 0.0).find("slice"), std::string::npos);
  EXPECT_NE(message(SourceModel{}, 1e-9).find("slice"), std::string::npos);
}

}  // namespace
