// Time parameters: seconds, MJD and ISO 8601 dates resolve to the same seconds on the data's
// axis, and anything else is one line naming the parameter.
#include "science/time_spec.hpp"

#include <cmath>
#include <string>

#include <gtest/gtest.h>

#include "binflow/error.hpp"

namespace {

using binflow::science::iso_to_mjd;
using binflow::science::TimeSpec;

constexpr double mjdref = 51544.5;  // 2000-01-01T12:00:00, SCIENCE.md's event files

TEST(TimeSpec, ThreeFormsOfOneTime) {
  EXPECT_EQ(TimeSpec::parse("3600", "tmin").seconds(mjdref), 3600.0);
  EXPECT_EQ(TimeSpec::parse(" 3600.5 ", "tmin").seconds(mjdref), 3600.5);
  EXPECT_EQ(TimeSpec::parse("MJD 51544.5", "tmin").seconds(mjdref), 0.0);
  EXPECT_EQ(TimeSpec::parse("mjd51545.5", "tmin").seconds(mjdref), 86400.0);
  EXPECT_EQ(TimeSpec::parse("2000-01-01T12:00:00", "tmin").seconds(mjdref), 0.0);
  // A date's seconds carry the MJD's resolution: ~1e-11 d, about a microsecond.
  EXPECT_NEAR(TimeSpec::parse("2000-01-01 13:00", "tmin").seconds(mjdref), 3600.0, 1e-5);
  EXPECT_NEAR(TimeSpec::parse("2000-01-02T12:00:00.25", "tmin").seconds(mjdref), 86400.25, 1e-5);
  EXPECT_EQ(TimeSpec::parse("2000-01-01", "tmin").seconds(mjdref), -43200.0);
  EXPECT_FALSE(TimeSpec::parse("", "tmin").given());
  EXPECT_TRUE(std::isnan(TimeSpec::parse("", "tmin").seconds(mjdref)));
}

TEST(TimeSpec, IsoDatesAgainstKnownMjds) {
  double mjd = 0.0;
  ASSERT_TRUE(iso_to_mjd("1858-11-17", mjd));
  EXPECT_EQ(mjd, 0.0);
  ASSERT_TRUE(iso_to_mjd("2000-01-01T00:00:00", mjd));
  EXPECT_EQ(mjd, 51544.0);
  ASSERT_TRUE(iso_to_mjd("2000-03-01", mjd));  // 2000 is a leap year
  EXPECT_EQ(mjd, 51604.0);
  ASSERT_TRUE(iso_to_mjd("2024-02-29T06:00:00", mjd));
  EXPECT_EQ(mjd, 60369.25);
  for (const char* bad : {"2023-02-29", "2000-13-01", "2000-01-32", "2000-01-01T24:00",
                          "2000-01-01T12:60", "2000-1-1", "2000-01-01T12", "2000-01-01x"}) {
    EXPECT_FALSE(iso_to_mjd(bad, mjd)) << bad;
  }
}

TEST(TimeSpec, BadTextNamesTheParameter) {
  try {
    (void)TimeSpec::parse("yesterday", "tmax");
    FAIL() << "no UsageError";
  } catch (const binflow::UsageError& e) {
    EXPECT_EQ(std::string(e.what()),
              "tmax: 'yesterday' is not a time: give seconds (3600), 'MJD 51544.5' or an ISO "
              "8601 date (2000-01-01T12:00:00)");
  }
  EXPECT_THROW((void)TimeSpec::parse("MJD", "tmin"), binflow::UsageError);
  EXPECT_THROW((void)TimeSpec::parse("nan", "tmin"), binflow::UsageError);
  EXPECT_THROW((void)TimeSpec::parse("inf", "tmin"), binflow::UsageError);
}

}  // namespace
