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

Table RunStats::bins_table() const {
  Table table(Schema{
      {"bin", ColumnType::i64, "", "global bin index"},
      {"rank", ColumnType::i64, "", "rank that ran the bin"},
      {"start", ColumnType::f64, "s", "start, seconds since the map started on that rank"},
      {"end", ColumnType::f64, "s", "end, seconds since the map started on that rank"},
      {"wall", ColumnType::f64, "s", "wall-clock time of the bin"},
      {"cpu", ColumnType::f64, "s", "process CPU time while the bin ran (all its threads)"},
      {"threads", ColumnType::i64, "", "thread budget of the bin"},
      {"peak_rss", ColumnType::i64, "KiB", "peak resident memory of the process after the bin"},
      {"resumed", ColumnType::i64, "", "1 if taken from the checkpoint of an earlier run"},
  });
  for (const BinStats& b : bins) {
    table.append({b.index, std::int64_t{b.rank}, b.start, b.end, b.wall, b.cpu,
                  std::int64_t{b.threads}, b.peak_rss_kib, std::int64_t{b.resumed ? 1 : 0}});
  }
  return table;
}

Table RunStats::ranks_table() const {
  Table table(Schema{
      {"rank", ColumnType::i64, "", ""},
      {"bins", ColumnType::i64, "", "bins run by the rank in this run"},
      {"busy", ColumnType::f64, "s", "time spent inside bins"},
      {"idle", ColumnType::f64, "s", "wall time not spent inside bins"},
      {"efficiency", ColumnType::f64, "", "busy / wall"},
      {"peak_rss", ColumnType::i64, "KiB", "peak resident memory of the rank's process"},
  });
  for (const RankStats& r : ranks) {
    table.append({std::int64_t{r.rank}, r.bins, r.busy, r.idle, efficiency_of(r), r.peak_rss_kib});
  }
  return table;
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
