#include "binflow/run_stats.hpp"

#include <algorithm>

namespace binflow {

namespace {

double busy_sum(const std::vector<RankStats>& ranks) {
  double busy = 0.0;
  for (const RankStats& r : ranks) busy += r.busy;
  return busy;
}

}  // namespace

double RunStats::efficiency() const {
  if (ranks.empty() || wall <= 0.0) return 0.0;
  return busy_sum(ranks) / (static_cast<double>(ranks.size()) * wall);
}

double RunStats::imbalance() const {
  if (ranks.empty()) return 0.0;
  double most = 0.0;
  for (const RankStats& r : ranks) most = std::max(most, r.busy);
  const double mean = busy_sum(ranks) / static_cast<double>(ranks.size());
  return mean > 0.0 ? most / mean - 1.0 : 0.0;
}

double RunStats::efficiency_of(const RankStats& rank) const {
  return wall > 0.0 ? rank.busy / wall : 0.0;
}

void RunStats::merge_totals(const RunStats& other) {
  wall += other.wall;
  if (other.ranks.size() != ranks.size()) return;
  for (std::size_t r = 0; r < ranks.size(); ++r) {
    ranks[r].busy += other.ranks[r].busy;
    ranks[r].idle += other.ranks[r].idle;
    ranks[r].bins += other.ranks[r].bins;
    ranks[r].peak_rss_kib = std::max(ranks[r].peak_rss_kib, other.ranks[r].peak_rss_kib);
  }
}

}  // namespace binflow
