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

namespace binflow {
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

std::string_view trim(std::string_view s) {
  constexpr std::string_view blanks = " \t\r\n\v\f";
  const auto first = s.find_first_not_of(blanks);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(blanks) - first + 1);
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

struct ColumnNames {
  std::string_view lo;
  std::string_view hi;
};

ColumnNames column_names(BinKind kind) {
  switch (kind) {
    case BinKind::energy:
      return {"emin", "emax"};
    case BinKind::phase:
      return {"phmin", "phmax"};
    default:
      return {"start", "stop"};
  }
}

// Axis limits beyond ordering: energies are positive, phases lie in [0, 1].
void check_axis(BinKind kind, double lo, double hi, const std::string& where) {
  if (kind == BinKind::energy && lo <= 0.0) {
    throw UsageError(fmt::format("{}: energy bin [{}, {}) must start above 0 TeV", where, lo, hi));
  }
  if (kind == BinKind::phase && (lo < 0.0 || hi > 1.0)) {
    throw UsageError(fmt::format("{}: phase bin [{}, {}) is not within [0, 1]", where, lo, hi));
  }
}

// `where` prefixes every message: "bins.txt:7" for a file line, "bin 3" for an explicit list.
void check_bin(BinKind kind, double lo, double hi, const std::vector<Bin>& previous,
               const std::string& where) {
  if (!(lo < hi))
    throw UsageError(fmt::format("{}: bin [{}, {}) has start >= stop", where, lo, hi));
  check_axis(kind, lo, hi, where);
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

std::vector<Bin> bins_from_text(BinKind kind, const std::string& path) {
  std::ifstream in = open_text_file(path);
  const ColumnNames names = column_names(kind);
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
      throw UsageError(fmt::format("{}: expected two numbers '{} {}', got '{}'", where, names.lo,
                                   names.hi, line));
    }
    check_bin(kind, lo, hi, bins, where);
    bins.push_back(Bin{static_cast<std::int64_t>(bins.size()), lo, hi});
  }
  if (in.bad()) throw IoError(fmt::format("{}: read failed ({})", path, std::strerror(errno)));
  if (bins.empty()) {
    throw UsageError(
        fmt::format("{}: no bins (the file is empty or holds only comments); "
                    "expected lines '{} {}'",
                    path, names.lo, names.hi));
  }
  return bins;
}

}  // namespace

BinPlan BinPlan::time_linear(double tmin, double tmax, std::int64_t tbins) {
  require_range(tmin, tmax, "tmin", "tmax");
  require_count(tbins, "tbins");
  const double width = tmax - tmin;
  const auto edge = [&](std::int64_t k) {
    if (k == tbins) return tmax;
    return tmin + width * static_cast<double>(k) / static_cast<double>(tbins);
  };
  return BinPlan(BinKind::time, contiguous_bins(tbins, edge, "tbins"));
}

BinPlan BinPlan::time_from_gtis(std::span<const double> start, std::span<const double> stop,
                                double tmin, double tmax) {
  require_range(tmin, tmax, "tmin", "tmax");
  if (start.size() != stop.size()) {
    throw UsageError(
        fmt::format("GTIs have {} start times but {} stop times", start.size(), stop.size()));
  }
  std::vector<Bin> bins;
  double previous_stop = -std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i < start.size(); ++i) {
    const std::string where = fmt::format("GTI {}", i);
    require_finite(start[i], where + " start");
    require_finite(stop[i], where + " stop");
    // Zero-length GTIs occur in real files and are simply empty; reversed ones are corrupt.
    if (start[i] > stop[i]) {
      throw UsageError(fmt::format("{}: [{}, {}) has start > stop", where, start[i], stop[i]));
    }
    if (start[i] < previous_stop) {
      throw UsageError(fmt::format(
          "{}: GTIs overlap or are out of order (starts at {} before the previous stop {})", where,
          start[i], previous_stop));
    }
    previous_stop = stop[i];
    const double lo = std::max(start[i], tmin);
    const double hi = std::min(stop[i], tmax);
    if (lo < hi) bins.push_back(Bin{static_cast<std::int64_t>(bins.size()), lo, hi});
  }
  if (bins.empty()) {
    throw UsageError(fmt::format("no good time interval overlaps [tmin, tmax) = [{}, {}) ({} GTIs)",
                                 tmin, tmax, start.size()));
  }
  return BinPlan(BinKind::time, std::move(bins));
}

BinPlan BinPlan::time_from_file(const std::string& path) {
  return BinPlan(BinKind::time, bins_from_text(BinKind::time, path));
}

BinPlan BinPlan::energy_log(double emin, double emax, std::int64_t enumbins) {
  require_range(emin, emax, "emin", "emax");
  if (!(emin > 0.0)) throw UsageError(fmt::format("emin must be above 0 TeV, got {}", emin));
  require_count(enumbins, "enumbins");
  const double ratio = emax / emin;
  const auto edge = [&](std::int64_t k) {
    if (k == 0) return emin;
    if (k == enumbins) return emax;
    return emin * std::pow(ratio, static_cast<double>(k) / static_cast<double>(enumbins));
  };
  return BinPlan(BinKind::energy, contiguous_bins(enumbins, edge, "enumbins"));
}

BinPlan BinPlan::energy_from_file(const std::string& path) {
  return BinPlan(BinKind::energy, bins_from_text(BinKind::energy, path));
}

BinPlan BinPlan::phase(std::int64_t phbins) {
  require_count(phbins, "phbins");
  const auto edge = [&](std::int64_t k) {
    return static_cast<double>(k) / static_cast<double>(phbins);
  };
  return BinPlan(BinKind::phase, contiguous_bins(phbins, edge, "phbins"));
}

BinPlan BinPlan::phase_from_file(const std::string& path) {
  return BinPlan(BinKind::phase, bins_from_text(BinKind::phase, path));
}

BinPlan BinPlan::trials(std::int64_t ntrials) {
  require_count(ntrials, "ntrials");
  std::vector<Bin> bins(static_cast<std::size_t>(ntrials));
  for (std::int64_t k = 0; k < ntrials; ++k) {
    const auto value = static_cast<double>(k);
    bins[static_cast<std::size_t>(k)] = Bin{k, value, value};
  }
  return BinPlan(BinKind::trial, std::move(bins));
}

BinPlan BinPlan::from_edges(BinKind kind, std::span<const double> lo, std::span<const double> hi) {
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
    if (kind == BinKind::trial) {
      if (lo[i] != hi[i] || (!bins.empty() && !(lo[i] > bins.back().lo))) {
        throw UsageError(
            fmt::format("{}: trial [{}, {}] must have lo = hi, increasing", where, lo[i], hi[i]));
      }
    } else {
      check_bin(kind, lo[i], hi[i], bins, where);
    }
    bins.push_back(Bin{static_cast<std::int64_t>(i), lo[i], hi[i]});
  }
  return BinPlan(kind, std::move(bins));
}

std::string_view BinPlan::kind_name() const {
  switch (kind_) {
    case BinKind::time:
      return "time";
    case BinKind::energy:
      return "energy";
    case BinKind::phase:
      return "phase";
    case BinKind::trial:
      return "trial";
  }
  return "unknown";
}

std::string_view BinPlan::unit() const {
  switch (kind_) {
    case BinKind::time:
      return "s";
    case BinKind::energy:
      return "TeV";
    case BinKind::phase:
    case BinKind::trial:
      return "";
  }
  return "";
}

}  // namespace binflow
