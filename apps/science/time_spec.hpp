#pragma once
// Time parameters as users of ctools and Gammapy write them (SCIENCE.md section 7): seconds on
// the data's time axis ("3600.5"), a Modified Julian Date ("MJD 51544.5"), or an ISO 8601 date
// ("2000-01-01T12:00:00", in the data's time system). A date is resolved to seconds once the
// axis' reference MJD is known (the event file's mjdref).
#include <string>
#include <string_view>

namespace binflow::science {

/// A parsed time parameter.
class TimeSpec {
public:
  /// Parses `text` for parameter `parameter` ("" = none given). UsageError naming the
  /// parameter and the text for anything else than the three forms above.
  static TimeSpec parse(std::string_view text, std::string_view parameter);

  [[nodiscard]] bool given() const { return kind_ != Kind::none; }
  /// Seconds since `mjdref` on the data's axis; NaN when none was given.
  [[nodiscard]] double seconds(double mjdref) const;
  /// Whether two specs compare without a reference (both seconds, or both dates).
  [[nodiscard]] bool comparable_with(const TimeSpec& other) const { return kind_ == other.kind_; }
  /// The value in its own form (seconds, or MJD days), for such comparisons.
  [[nodiscard]] double value() const { return value_; }

private:
  enum class Kind { none, seconds, mjd };
  TimeSpec(Kind kind, double value) : kind_(kind), value_(value) {}
  Kind kind_;
  double value_;
};

/// The MJD of an ISO 8601 date and time "YYYY-MM-DD[(T| )hh:mm[:ss[.fff]]]" on a uniform time
/// scale (TT, TAI: no leap seconds); false when `text` is not of that form or out of range.
bool iso_to_mjd(std::string_view text, double& mjd);

}  // namespace binflow::science
