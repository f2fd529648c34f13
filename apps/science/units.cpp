#include "science/units.hpp"

#include <array>
#include <cctype>
#include <cmath>
#include <numbers>
#include <utility>

#include <fmt/format.h>

#include "binflow/error.hpp"

namespace binflow::science::units {

namespace {

struct Named {
  std::string_view name;
  Unit unit;
};

constexpr double deg_per_rad = 180.0 / std::numbers::pi;

// Factors to TeV, deg, s and cm. erg: 1e-7 J / 1.602176634e-19 J/eV = 6.241509074e11 eV.
const std::array<Named, 24> named_units = {{
    {"eV", {1e-12, {1, 0, 0, 0}}},
    {"keV", {1e-9, {1, 0, 0, 0}}},
    {"MeV", {1e-6, {1, 0, 0, 0}}},
    {"GeV", {1e-3, {1, 0, 0, 0}}},
    {"TeV", {1.0, {1, 0, 0, 0}}},
    {"PeV", {1e3, {1, 0, 0, 0}}},
    {"erg", {1e-7 / 1.602176634e-19 * 1e-12, {1, 0, 0, 0}}},
    {"deg", {1.0, {0, 1, 0, 0}}},
    {"degree", {1.0, {0, 1, 0, 0}}},
    {"rad", {deg_per_rad, {0, 1, 0, 0}}},
    {"arcmin", {1.0 / 60.0, {0, 1, 0, 0}}},
    {"arcsec", {1.0 / 3600.0, {0, 1, 0, 0}}},
    {"sr", {deg_per_rad * deg_per_rad, {0, 2, 0, 0}}},
    {"s", {1.0, {0, 0, 1, 0}}},
    {"ms", {1e-3, {0, 0, 1, 0}}},
    {"min", {60.0, {0, 0, 1, 0}}},
    {"h", {3600.0, {0, 0, 1, 0}}},
    {"d", {86400.0, {0, 0, 1, 0}}},
    {"m", {100.0, {0, 0, 0, 1}}},
    {"cm", {1.0, {0, 0, 0, 1}}},
    {"mm", {0.1, {0, 0, 0, 1}}},
    // Counts are a number (OGIP writes "ct / (s MeV sr)").
    {"ct", {1.0, {}}},
    {"count", {1.0, {}}},
    {"counts", {1.0, {}}},
}};

// Powers of a dimension beyond this are no unit of a real file; the bound keeps nested
// powers ("((s^99)^99)^99...", found by fuzz_units) from overflowing int.
constexpr long max_power = 1000;

// a * b into `a`; false when a power leaves [-max_power, max_power].
bool times(Unit& a, const Unit& b) {
  a.factor *= b.factor;
  for (auto [x, y] : {std::pair{&a.dimension.energy, b.dimension.energy},
                      std::pair{&a.dimension.angle, b.dimension.angle},
                      std::pair{&a.dimension.time, b.dimension.time},
                      std::pair{&a.dimension.length, b.dimension.length}}) {
    const long sum = static_cast<long>(*x) + y;
    if (sum > max_power || sum < -max_power) return false;
    *x = static_cast<int>(sum);
  }
  return true;
}

// a^p into `a`; false when a power leaves [-max_power, max_power].
bool power(Unit& a, int p) {
  a.factor = std::pow(a.factor, p);
  for (int* x : {&a.dimension.energy, &a.dimension.angle, &a.dimension.time,
                 &a.dimension.length}) {
    const long product = static_cast<long>(*x) * p;
    if (product > max_power || product < -max_power) return false;
    *x = static_cast<int>(product);
  }
  return true;
}

// Recursive descent over the unit string; fails by returning false.
class Parser {
public:
  explicit Parser(std::string_view text) : text_(text) {}

  bool parse(Unit& out) {
    if (!expression(out)) return false;
    skip_blanks();
    return pos_ == text_.size();
  }

private:
  [[nodiscard]] bool at_end() const { return pos_ >= text_.size(); }
  [[nodiscard]] char peek() const { return at_end() ? '\0' : text_[pos_]; }
  void skip_blanks() {
    while (!at_end() && text_[pos_] == ' ') ++pos_;
  }

  // expression := factor { ('*' | '.' | ' ' | '/') factor }
  bool expression(Unit& out) {
    out = Unit{};
    skip_blanks();
    if (!factor(out)) return false;
    while (true) {
      skip_blanks();
      if (at_end() || peek() == ')') return true;
      bool divide = false;
      if (peek() == '/') {
        divide = true;
        ++pos_;
      } else if (peek() == '*' || peek() == '.') {
        ++pos_;
      }
      skip_blanks();
      Unit next;
      if (!factor(next) || (divide && !power(next, -1)) || !times(out, next)) return false;
    }
  }

  // factor := primary [power]
  bool factor(Unit& out) {
    if (!primary(out)) return false;
    int p = 1;
    if (text_.substr(pos_, 2) == "**") {
      pos_ += 2;
      if (!exponent(p)) return false;
    } else if (peek() == '^') {
      ++pos_;
      if (!exponent(p)) return false;
    } else if (std::isdigit(static_cast<unsigned char>(peek())) != 0 || peek() == '-' ||
               peek() == '+') {
      if (!exponent(p)) return false;
    }
    return power(out, p);
  }

  // exponent := ['('] [sign] digits [')']
  bool exponent(int& p) {
    const bool parenthesised = peek() == '(';
    if (parenthesised) ++pos_;
    int sign = 1;
    if (peek() == '-' || peek() == '+') {
      sign = peek() == '-' ? -1 : 1;
      ++pos_;
    }
    if (std::isdigit(static_cast<unsigned char>(peek())) == 0) return false;
    int value = 0;
    while (std::isdigit(static_cast<unsigned char>(peek())) != 0) {
      value = value * 10 + (peek() - '0');
      ++pos_;
      if (value > 99) return false;
    }
    if (parenthesised) {
      if (peek() != ')') return false;
      ++pos_;
    }
    p = sign * value;
    return true;
  }

  // primary := '(' expression ')' | name | integer
  bool primary(Unit& out) {
    if (peek() == '(') {
      ++pos_;
      if (!expression(out)) return false;
      skip_blanks();
      if (peek() != ')') return false;
      ++pos_;
      return true;
    }
    if (std::isdigit(static_cast<unsigned char>(peek())) != 0) {
      double value = 0.0;
      while (std::isdigit(static_cast<unsigned char>(peek())) != 0) {
        value = value * 10.0 + (peek() - '0');
        ++pos_;
      }
      out = Unit{value, {}};
      return value > 0.0;
    }
    const std::size_t start = pos_;
    while (std::isalpha(static_cast<unsigned char>(peek())) != 0) ++pos_;
    const std::string_view name = text_.substr(start, pos_ - start);
    for (const Named& n : named_units) {
      if (n.name == name) {
        out = n.unit;
        return true;
      }
    }
    return false;
  }

  std::string_view text_;
  std::size_t pos_ = 0;
};

Dimension dimension_of(Quantity quantity) {
  switch (quantity) {
    case Quantity::dimensionless:
      return {};
    case Quantity::energy:
      return {1, 0, 0, 0};
    case Quantity::angle:
      return {0, 1, 0, 0};
    case Quantity::time:
      return {0, 0, 1, 0};
    case Quantity::area:
      return {0, 0, 0, 2};
    case Quantity::per_solid_angle:
      return {0, -2, 0, 0};
    case Quantity::background_rate:
      return {-1, -2, -1, 0};
  }
  return {};
}

std::string_view trim_blanks(std::string_view text) {
  const std::size_t first = text.find_first_not_of(' ');
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(' ') - first + 1);
}

}  // namespace

std::optional<Unit> parse(std::string_view text) {
  text = trim_blanks(text);
  if (text.empty()) return Unit{};
  Unit out;
  if (!Parser(text).parse(out)) return std::nullopt;
  // "999999999^99" overflows to inf and "eV^-99" underflows to 0: no scale of a real file
  // (found by fuzz_units); either would turn every value of the column into inf or 0.
  if (!std::isfinite(out.factor) || !(out.factor > 0.0)) return std::nullopt;
  return out;
}

std::string describe(Quantity quantity) {
  switch (quantity) {
    case Quantity::dimensionless:
      return "dimensionless";
    case Quantity::energy:
      return "an energy (TeV, GeV, MeV, ...)";
    case Quantity::angle:
      return "an angle (deg, rad)";
    case Quantity::time:
      return "a time (s)";
    case Quantity::area:
      return "an area (m2, cm2)";
    case Quantity::per_solid_angle:
      return "a density per solid angle (sr-1, deg-2)";
    case Quantity::background_rate:
      return "a background rate (s-1 MeV-1 sr-1, s-1 TeV-1 deg-2, ...)";
  }
  return "?";
}

std::optional<double> factor(std::string_view text, Quantity quantity) {
  const std::optional<Unit> unit = parse(text);
  if (!unit || unit->dimension != dimension_of(quantity)) return std::nullopt;
  return unit->factor;
}

double require_factor(std::string_view text, Quantity quantity, const std::string& where) {
  if (trim_blanks(text).empty() && quantity != Quantity::dimensionless) {
    throw UsageError(
        fmt::format("{}: has no unit (TUNITn), expected {}", where, describe(quantity)));
  }
  const std::optional<double> f = factor(text, quantity);
  if (!f) {
    throw UsageError(
        fmt::format("{}: unit '{}' is not {}", where, trim_blanks(text), describe(quantity)));
  }
  return *f;
}

}  // namespace binflow::science::units
