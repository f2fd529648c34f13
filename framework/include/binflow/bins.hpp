#pragma once
// Bin plans: value types describing the work of a run. Every bin has a stable global
// index; logs, results, random streams and checkpoints are keyed by it, never by rank.
// The framework knows no domain: the caller names the axis (time in s, energy in TeV,
// phase, ...) and its limits; the science library builds its binnings from these parts.
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace binflow {

/// What the bins of a plan lie on, chosen by the caller.
struct Axis {
  std::string name;  ///< "time", "energy", "phase", ...: the log's and messages' word
  std::string unit;  ///< of lo and hi, e.g. "s", "TeV"; empty when dimensionless
  /// Names of the two columns of a bin file, for messages ("start stop", "emin emax").
  std::string lo_name = "lo";
  std::string hi_name = "hi";
  /// Every bin lies in [min, max]; with `min_exclusive`, lo > min (energies above 0).
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  bool min_exclusive = false;
  /// Bins are points lo = hi = k (Monte Carlo trials), not intervals.
  bool points = false;

  /// The axis of BinPlan::trials.
  static Axis trials();
};

/// One unit of work: [lo, hi) on the plan's axis, or the trial number in both for trials.
struct Bin {
  std::int64_t index = 0;
  double lo = 0.0;
  double hi = 0.0;
};

/// Parameter names used in the messages of BinPlan::linear and logarithmic.
struct EdgeNames {
  std::string_view lo;     ///< e.g. "tmin"
  std::string_view hi;     ///< e.g. "tmax"
  std::string_view count;  ///< e.g. "tbins"
};

/// An ordered list of bins on one axis. Immutable after construction. Every factory throws
/// UsageError with one line naming the parameter, file and line, or bin that is wrong.
class BinPlan {
public:
  /// `n` equal bins between lo and hi; the outer edges are exactly lo and hi and
  /// neighbours share their edge bit for bit.
  static BinPlan linear(Axis axis, double lo, double hi, std::int64_t n, EdgeNames names);
  /// `n` log-spaced bins between lo > 0 and hi, outer edges exact.
  static BinPlan logarithmic(Axis axis, double lo, double hi, std::int64_t n, EdgeNames names);
  /// Bins read from a two-column text file "lo hi" ('#' starts a comment): file:line
  /// errors for anything that does not parse, a bin with lo >= hi, outside the axis, or
  /// bins that overlap or are out of order.
  static BinPlan from_file(Axis axis, const std::string& path);
  /// Any explicit list, checked like a file; indices are 0..n-1 in the given order.
  static BinPlan from_edges(Axis axis, std::span<const double> lo, std::span<const double> hi);
  /// `ntrials` Monte Carlo trials; bin k has lo = hi = k.
  static BinPlan trials(std::int64_t ntrials);

  [[nodiscard]] const Axis& axis() const { return axis_; }
  [[nodiscard]] std::size_t size() const { return bins_.size(); }
  [[nodiscard]] bool empty() const { return bins_.empty(); }
  [[nodiscard]] const Bin& operator[](std::size_t i) const { return bins_[i]; }
  [[nodiscard]] const std::vector<Bin>& bins() const { return bins_; }
  [[nodiscard]] auto begin() const { return bins_.begin(); }
  [[nodiscard]] auto end() const { return bins_.end(); }

private:
  BinPlan(Axis axis, std::vector<Bin> bins) : axis_(std::move(axis)), bins_(std::move(bins)) {}
  Axis axis_;
  std::vector<Bin> bins_;
};

}  // namespace binflow
