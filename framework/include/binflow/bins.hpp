#pragma once
// Bin plans: value types describing the work of a run. Every bin has a stable global
// index; logs, results, random streams and checkpoints are keyed by it, never by rank.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace binflow {

enum class BinKind { time, energy, phase, trial };

/// One unit of work: [lo, hi) on the plan's axis (time s, energy TeV, phase), or the
/// trial number in both for trials.
struct Bin {
  std::int64_t index = 0;
  double lo = 0.0;
  double hi = 0.0;
};

/// An ordered list of bins on one axis. Immutable after construction.
class BinPlan {
public:
  /// `tbins` equal time bins between tmin and tmax (ctools tbinalg=LIN).
  static BinPlan time_linear(double tmin, double tmax, std::int64_t tbins);
  /// One bin per good time interval, clipped to [tmin, tmax); intervals outside are
  /// dropped (tbinalg=GTI).
  static BinPlan time_from_gtis(std::span<const double> start, std::span<const double> stop,
                                double tmin, double tmax);
  /// Bins read from a two-column text file "start stop" (tbinalg=FILE); '#' starts a
  /// comment. Throws UsageError naming file and line for anything that does not parse,
  /// a bin with start >= stop, or bins that overlap or are out of order.
  static BinPlan time_from_file(const std::string& path);
  /// `enumbins` log-spaced energy bins between emin and emax (ebinalg=LOG).
  static BinPlan energy_log(double emin, double emax, std::int64_t enumbins);
  /// Energy bins from a two-column text file "emin emax" (ebinalg=FILE).
  static BinPlan energy_from_file(const std::string& path);
  /// `phbins` equal phase bins covering [0, 1).
  static BinPlan phase(std::int64_t phbins);
  /// Phase bins from a two-column text file "phmin phmax" within [0, 1].
  static BinPlan phase_from_file(const std::string& path);
  /// `ntrials` Monte Carlo trials; bin k has lo = hi = k.
  static BinPlan trials(std::int64_t ntrials);
  /// Any explicit list; indices are assigned 0..n-1 in the given order.
  static BinPlan from_edges(BinKind kind, std::span<const double> lo, std::span<const double> hi);

  [[nodiscard]] BinKind kind() const { return kind_; }
  [[nodiscard]] std::size_t size() const { return bins_.size(); }
  [[nodiscard]] bool empty() const { return bins_.empty(); }
  [[nodiscard]] const Bin& operator[](std::size_t i) const { return bins_[i]; }
  [[nodiscard]] const std::vector<Bin>& bins() const { return bins_; }
  [[nodiscard]] auto begin() const { return bins_.begin(); }
  [[nodiscard]] auto end() const { return bins_.end(); }
  /// "time", "energy", "phase" or "trial".
  [[nodiscard]] std::string_view kind_name() const;
  /// Unit of lo/hi: "s", "TeV", "" (phase) or "" (trial).
  [[nodiscard]] std::string_view unit() const;

private:
  BinPlan(BinKind kind, std::vector<Bin> bins) : kind_(kind), bins_(std::move(bins)) {}
  BinKind kind_;
  std::vector<Bin> bins_;
};

}  // namespace binflow
