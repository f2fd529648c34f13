#include "science/time_spec.hpp"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>

#include <fmt/format.h>

#include "binflow/error.hpp"

namespace binflow::science {

namespace {

constexpr double seconds_per_day = 86400.0;

std::string_view trimmed(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())) != 0) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())) != 0) s.remove_suffix(1);
  return s;
}

bool parse_double(std::string_view s, double& value) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  return ec == std::errc() && end == s.data() + s.size() && std::isfinite(value);
}

// Exactly `digits` decimal digits at `at`.
bool fixed_int(std::string_view s, std::size_t at, std::size_t digits, int& value) {
  if (at + digits > s.size()) return false;
  value = 0;
  for (std::size_t i = at; i < at + digits; ++i) {
    if (std::isdigit(static_cast<unsigned char>(s[i])) == 0) return false;
    value = value * 10 + (s[i] - '0');
  }
  return true;
}

// Days from 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
std::int64_t days_from_civil(std::int64_t y, int m, int d) {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<std::int64_t>(y - era * 400);
  const std::int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

bool leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int days_in_month(int y, int m) {
  constexpr int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && leap(y) ? 29 : days[m - 1];
}

}  // namespace

bool iso_to_mjd(std::string_view s, double& mjd) {
  int year = 0;
  int month = 0;
  int day = 0;
  if (!fixed_int(s, 0, 4, year) || s.size() < 10 || s[4] != '-' || !fixed_int(s, 5, 2, month) ||
      s[7] != '-' || !fixed_int(s, 8, 2, day)) {
    return false;
  }
  if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month)) return false;
  int hour = 0;
  int minute = 0;
  double second = 0.0;
  if (s.size() > 10) {
    if ((s[10] != 'T' && s[10] != ' ') || !fixed_int(s, 11, 2, hour) || s.size() < 16 ||
        s[13] != ':' || !fixed_int(s, 14, 2, minute)) {
      return false;
    }
    if (s.size() > 16) {
      if (s[16] != ':' || !parse_double(s.substr(17), second) || s.substr(17).size() < 2 ||
          second < 0.0 || second >= 60.0) {
        return false;
      }
    }
    if (hour > 23 || minute > 59) return false;
  }
  // MJD 0 is 1858-11-17, 40587 days before 1970-01-01.
  const auto days = static_cast<double>(days_from_civil(year, month, day) + 40587);
  mjd = days + (hour * 3600.0 + minute * 60.0 + second) / seconds_per_day;
  return true;
}

TimeSpec TimeSpec::parse(std::string_view text, std::string_view parameter) {
  const std::string_view t = trimmed(text);
  if (t.empty()) return {Kind::none, std::numeric_limits<double>::quiet_NaN()};
  double value = 0.0;
  if (parse_double(t, value)) return {Kind::seconds, value};
  if (t.size() > 3 && (t.substr(0, 3) == "MJD" || t.substr(0, 3) == "mjd") &&
      parse_double(trimmed(t.substr(3)), value)) {
    return {Kind::mjd, value};
  }
  if (iso_to_mjd(t, value)) return {Kind::mjd, value};
  throw UsageError(
      fmt::format("{}: '{}' is not a time: give seconds (3600), 'MJD 51544.5' or an ISO 8601 date "
                  "(2000-01-01T12:00:00)",
                  parameter, text));
}

double TimeSpec::seconds(double mjdref) const {
  switch (kind_) {
    case Kind::seconds:
      return value_;
    case Kind::mjd:
      return (value_ - mjdref) * seconds_per_day;
    case Kind::none:
      break;
  }
  return std::numeric_limits<double>::quiet_NaN();
}

}  // namespace binflow::science
