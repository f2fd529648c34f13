#include "binflow/bins.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string_view>
#include <system_error>

#include <fmt/format.h>

#include "binflow/error.hpp"
#include "text.hpp"

namespace binflow {

using detail::trim;
namespace {

void require_finite(double value, std::string_view name) {
  if (!std::isfinite(value))
    throw UsageError(fmt::format("{} must be a finite number, got {}", name, value));
}

void require_count(std::int64_t n, std::string_view name) {
  if (n < 1) throw UsageError(fmt::format("{} must be at least 1, got {}", name, n));
}

void require_range(double lo, double hi, std::string_view lo_name, std::string_view hi_name) {
  require_finite(lo, lo_name);
  require_finite(hi, hi_name);
  if (!(lo < hi)) {
    throw UsageError(fmt::format("{} ({}) must be less than {} ({})", lo_name, lo, hi_name, hi));
  }
}

// Equal cells of [lo, hi] whose outer edges are exactly lo and hi. `edge(k)` is evaluated once
// per edge, so neighbouring bins share their edge bit for bit.
template <typename EdgeFn>
std::vector<Bin> contiguous_bins(std::int64_t n, EdgeFn edge, std::string_view count_name) {
  std::vector<Bin> bins(static_cast<std::size_t>(n));
  double lo = edge(0);
  for (std::int64_t k = 0; k < n; ++k) {
    const double hi = edge(k + 1);
    // Possible only when n is so large that cells are narrower than the spacing of doubles.
    if (!(lo < hi)) {
      throw UsageError(
          fmt::format("{} = {} is too many: bin {} [{}, {}) is empty in double precision",
                      count_name, n, k, lo, hi));
    }
    bins[static_cast<std::size_t>(k)] = Bin{k, lo, hi};
    lo = hi;
  }
  return bins;
}

// Parses one number that spans the whole token; from_chars is locale-independent, unlike
// strtod, so "1.5" means the same under every LC_NUMERIC.
bool parse_number(std::string_view token, double& value) {
  if (!token.empty() && token.front() == '+') token.remove_prefix(1);
  const auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), value);
  return ec == std::errc() && end == token.data() + token.size() && std::isfinite(value);
}

// Splits "a b" on blanks into exactly two finite numbers.
bool parse_pair(std::string_view line, double& a, double& b) {
  const auto gap = line.find_first_of(" \t");
  if (gap == std::string_view::npos) return false;
  const std::string_view second = trim(line.substr(gap));
  if (second.find_first_of(" \t") != std::string_view::npos) return false;
  return parse_number(line.substr(0, gap), a) && parse_number(second, b);
}

std::string with_unit(double value, const Axis& axis) {
  return axis.unit.empty() ? fmt::format("{}", value) : fmt::format("{} {}", value, axis.unit);
}

// Axis limits beyond ordering (energies above 0, phases within [0, 1]).
void check_axis(const Axis& axis, double lo, double hi, const std::string& where) {
  if (axis.min_exclusive && !(lo > axis.min)) {
    throw UsageError(fmt::format("{}: {} bin [{}, {}) must start above {}", where, axis.name, lo,
                                 hi, with_unit(axis.min, axis)));
  }
  if ((!axis.min_exclusive && lo < axis.min) || hi > axis.max) {
    throw UsageError(fmt::format("{}: {} bin [{}, {}) is not within [{}, {}]", where, axis.name, lo,
                                 hi, axis.min, axis.max));
  }
}

// `where` prefixes every message: "bins.txt:7" for a file line, "bin 3" for an explicit list.
void check_bin(const Axis& axis, double lo, double hi, const std::vector<Bin>& previous,
               const std::string& where) {
  if (!(lo < hi))
    throw UsageError(fmt::format("{}: bin [{}, {}) has start >= stop", where, lo, hi));
  check_axis(axis, lo, hi, where);
  if (!previous.empty() && lo < previous.back().hi) {
    throw UsageError(fmt::format(
        "{}: bins overlap or are out of order (starts at {} before the previous stop {})", where,
        lo, previous.back().hi));
  }
}

std::ifstream open_text_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw UsageError(fmt::format("{}: cannot open ({})", path, std::strerror(EISDIR)));
  }
  errno = 0;
  std::ifstream in(path);
  if (!in) {
    const int err = errno;
    throw UsageError(fmt::format("{}: cannot open ({})", path,
                                 err != 0 ? std::strerror(err) : "unknown reason"));
  }
  return in;
}

std::vector<Bin> bins_from_text(const Axis& axis, const std::string& path) {
  std::ifstream in = open_text_file(path);
  std::vector<Bin> bins;
  std::string raw;
  for (std::size_t line_no = 1; std::getline(in, raw); ++line_no) {
    const std::string_view text(raw);
    const std::string_view line = trim(text.substr(0, text.find('#')));
    if (line.empty()) continue;
    const std::string where = fmt::format("{}:{}", path, line_no);
    double lo = 0.0;
    double hi = 0.0;
    if (!parse_pair(line, lo, hi)) {
      throw UsageError(fmt::format("{}: expected two numbers '{} {}', got '{}'", where,
                                   axis.lo_name, axis.hi_name, line));
    }
    check_bin(axis, lo, hi, bins, where);
    bins.push_back(Bin{static_cast<std::int64_t>(bins.size()), lo, hi});
  }
  if (in.bad()) throw IoError(fmt::format("{}: read failed ({})", path, std::strerror(errno)));
  if (bins.empty()) {
    throw UsageError(
        fmt::format("{}: no bins (the file is empty or holds only comments); "
                    "expected lines '{} {}'",
                    path, axis.lo_name, axis.hi_name));
  }
  return bins;
}

}  // namespace

Axis Axis::trials() {
  return Axis{.name = "trial", .unit = "", .lo_name = "lo", .hi_name = "hi", .points = true};
}

BinPlan BinPlan::linear(Axis axis, double lo, double hi, std::int64_t n, EdgeNames names) {
  require_range(lo, hi, names.lo, names.hi);
  require_count(n, names.count);
  const double width = hi - lo;
  const auto edge = [&](std::int64_t k) {
    if (k == n) return hi;
    return lo + width * static_cast<double>(k) / static_cast<double>(n);
  };
  std::vector<Bin> bins = contiguous_bins(n, edge, names.count);
  check_axis(axis, lo, hi, fmt::format("{} = {}, {} = {}", names.lo, lo, names.hi, hi));
  return BinPlan(std::move(axis), std::move(bins));
}

BinPlan BinPlan::logarithmic(Axis axis, double lo, double hi, std::int64_t n, EdgeNames names) {
  require_range(lo, hi, names.lo, names.hi);
  if (!(lo > 0.0)) {
    throw UsageError(
        fmt::format("{} must be above {}, got {}", names.lo, with_unit(0.0, axis), lo));
  }
  require_count(n, names.count);
  const double ratio = hi / lo;
  const auto edge = [&](std::int64_t k) {
    if (k == 0) return lo;
    if (k == n) return hi;
    return lo * std::pow(ratio, static_cast<double>(k) / static_cast<double>(n));
  };
  std::vector<Bin> bins = contiguous_bins(n, edge, names.count);
  check_axis(axis, lo, hi, fmt::format("{} = {}, {} = {}", names.lo, lo, names.hi, hi));
  return BinPlan(std::move(axis), std::move(bins));
}

BinPlan BinPlan::from_file(Axis axis, const std::string& path) {
  std::vector<Bin> bins = bins_from_text(axis, path);
  return BinPlan(std::move(axis), std::move(bins));
}

BinPlan BinPlan::trials(std::int64_t ntrials) {
  require_count(ntrials, "ntrials");
  std::vector<Bin> bins(static_cast<std::size_t>(ntrials));
  for (std::int64_t k = 0; k < ntrials; ++k) {
    const auto value = static_cast<double>(k);
    bins[static_cast<std::size_t>(k)] = Bin{k, value, value};
  }
  return BinPlan(Axis::trials(), std::move(bins));
}

BinPlan BinPlan::from_edges(Axis axis, std::span<const double> lo, std::span<const double> hi) {
  if (lo.size() != hi.size()) {
    throw UsageError(
        fmt::format("bin edges: {} lower edges but {} upper edges", lo.size(), hi.size()));
  }
  std::vector<Bin> bins;
  bins.reserve(lo.size());
  for (std::size_t i = 0; i < lo.size(); ++i) {
    const std::string where = fmt::format("bin {}", i);
    require_finite(lo[i], where + " start");
    require_finite(hi[i], where + " stop");
    // A trial is a point (lo = hi = k), every other bin a half-open interval.
    if (axis.points) {
      if (lo[i] != hi[i] || (!bins.empty() && !(lo[i] > bins.back().lo))) {
        throw UsageError(
            fmt::format("{}: trial [{}, {}] must have lo = hi, increasing", where, lo[i], hi[i]));
      }
    } else {
      check_bin(axis, lo[i], hi[i], bins, where);
    }
    bins.push_back(Bin{static_cast<std::int64_t>(i), lo[i], hi[i]});
  }
  return BinPlan(std::move(axis), std::move(bins));
}

}  // namespace binflow
