#include "binflow/run_monitor.hpp"

#include <chrono>

#include "binflow/bin_context.hpp"

namespace binflow {

namespace {

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

RunMonitor::RunMonitor() : start_(steady_seconds()), map_start_(0.0) {}

double RunMonitor::seconds_since_start() const { return steady_seconds() - start_; }

void RunMonitor::map_started(std::string_view name, std::int64_t total, std::int64_t resumed,
                             int ranks) {
  std::lock_guard lock(mutex_);
  map_start_ = seconds_since_start();
  now_.map = std::string(name);
  now_.total = total;
  now_.done = resumed;
  now_.resumed = resumed;
  now_.failed = 0;
  now_.ranks = ranks;
  now_.ranks_working = ranks;
  now_.eta = -1.0;
  done_now_ = 0;
  ++now_.version;
}

void RunMonitor::record_bins() {
  std::lock_guard lock(mutex_);
  record_bins_ = true;
}

void RunMonitor::bin_completed(const BinStats& stats, std::string_view status) {
  std::lock_guard lock(mutex_);
  if (record_bins_) {
    MonitoredBin& bin = bins_.emplace_back(MonitoredBin{stats, now_.map, std::string(status)});
    bin.stats.start += map_start_;
    bin.stats.end += map_start_;
  }
  ++now_.done;
  ++done_now_;
  if (status == bin_status::failed) ++now_.failed;
  // The rate of this run's bins so far (resumed ones took no time now).
  const double in_map = seconds_since_start() - map_start_;
  now_.eta = in_map / static_cast<double>(done_now_) * static_cast<double>(now_.total - now_.done);
  now_.bins_recorded = bins_.size();
  ++now_.version;
}

void RunMonitor::rank_finished() {
  std::lock_guard lock(mutex_);
  if (now_.ranks_working > 0) --now_.ranks_working;
  ++now_.version;
}

void RunMonitor::map_finished() {
  std::lock_guard lock(mutex_);
  now_.ranks_working = 0;
  now_.eta = 0.0;
  ++now_.version;
}

void RunMonitor::run_finished() {
  std::lock_guard lock(mutex_);
  now_.ranks_working = 0;
  now_.eta = 0.0;
  now_.finished = true;
  ++now_.version;
}

RunSnapshot RunMonitor::snapshot() const {
  std::lock_guard lock(mutex_);
  RunSnapshot out = now_;
  out.elapsed = seconds_since_start();
  return out;
}

std::vector<MonitoredBin> RunMonitor::bins_since(std::size_t first) const {
  std::lock_guard lock(mutex_);
  if (first >= bins_.size()) return {};
  return {bins_.begin() + static_cast<std::ptrdiff_t>(first), bins_.end()};
}

}  // namespace binflow
