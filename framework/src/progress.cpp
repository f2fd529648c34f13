#include "binflow/progress.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <string_view>

#include <fmt/format.h>

#include "binflow/ordered_log.hpp"

namespace binflow {

namespace {

// 5 redraws a second look live and cost nothing next to a terminal's own rendering.
constexpr double bar_period = 0.2;
constexpr int widest_bar = 40;
constexpr int narrowest_bar = 10;

std::string label(const RunSnapshot& snap, std::string_view tool) {
  if (snap.map == tool) return std::string(tool);
  return fmt::format("{}:{}", tool, snap.map);
}

std::string eta_text(const RunSnapshot& snap) {
  return snap.eta < 0.0 ? std::string("?") : format_duration(snap.eta, false);
}

int terminal_columns() {
  winsize size{};
  if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &size) != 0 || size.ws_col == 0) return 80;
  return size.ws_col;
}

}  // namespace

std::optional<ProgressConfig> progress_config(std::string_view tool, int chatter, double progress) {
  if (chatter <= 0) return std::nullopt;
  const char* term = std::getenv("TERM");
  const bool terminal =
      ::isatty(STDERR_FILENO) == 1 && (term == nullptr || std::string_view(term) != "dumb");
  if (terminal) {
    return ProgressConfig{ProgressConfig::Mode::bar, progress, terminal_columns(),
                          std::string(tool)};
  }
  if (progress <= 0.0) return std::nullopt;
  return ProgressConfig{ProgressConfig::Mode::lines, progress, 0, std::string(tool)};
}

std::string format_duration(double seconds, bool tenths) {
  seconds = std::max(seconds, 0.0);
  // Rounded before the unit is chosen: 59.97 s is "1 min 00 s", never "60.0 s" or "60 s".
  if (tenths && seconds < 59.95) return fmt::format("{:.1f} s", seconds);
  const auto whole = static_cast<long long>(tenths ? std::round(seconds) : std::ceil(seconds));
  if (whole < 60) return fmt::format("{} s", whole);
  if (whole < 3600) return fmt::format("{} min {:02} s", whole / 60, whole % 60);
  return fmt::format("{} h {:02} min", whole / 3600, whole % 3600 / 60);
}

std::string format_progress_bar(const RunSnapshot& snap, std::string_view tool, int columns) {
  const std::string head = label(snap, tool);
  const std::string failed =
      snap.failed > 0 ? fmt::format("  {} failed", snap.failed) : std::string();
  const std::string tail = fmt::format("  {}/{} bins{}  {}  ETA {}", snap.done, snap.total, failed,
                                       format_duration(snap.elapsed, true), eta_text(snap));
  const int room = columns - 1;
  // " [" + "]" around the bar.
  const int width = std::min(widest_bar, room - static_cast<int>(head.size() + tail.size()) - 3);
  std::string line = head;
  if (width >= narrowest_bar) {
    const double fraction =
        snap.total > 0 ? static_cast<double>(snap.done) / static_cast<double>(snap.total) : 0.0;
    const int filled = std::clamp(static_cast<int>(fraction * width), 0, width);
    line += fmt::format(" [{}{}]", std::string(static_cast<std::size_t>(filled), '#'),
                        std::string(static_cast<std::size_t>(width - filled), '-'));
  }
  line += tail;
  if (room >= 0 && line.size() > static_cast<std::size_t>(room)) {
    line.resize(static_cast<std::size_t>(room));
  }
  return line;
}

std::string format_progress_line(const RunSnapshot& snap, std::string_view tool) {
  // Rounded down: 100% only once every bin is done.
  const std::int64_t percent = snap.total > 0 ? snap.done * 100 / snap.total : 100;
  return fmt::format("binflow: progress {} {}/{} bins ({}%), {} failed, {} elapsed, ETA {}",
                     label(snap, tool), snap.done, snap.total, percent, snap.failed,
                     format_duration(snap.elapsed, true), eta_text(snap));
}

Progress::Progress(const RunMonitor& monitor, RunLogSink& sink, ProgressConfig config)
    : monitor_(monitor),
      sink_(sink),
      config_(std::move(config)),
      period_(config_.mode == ProgressConfig::Mode::bar ? bar_period : config_.interval) {
  // The thread takes no signal: a stop signal (SIGTERM before a time limit) must reach the
  // main thread as it always has. The mask is inherited, so set it around the creation.
  sigset_t all{};
  sigset_t before{};
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &before);
  thread_ = std::thread([this] { loop(); });
  pthread_sigmask(SIG_SETMASK, &before, nullptr);
}

Progress::~Progress() {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void Progress::loop() {
  using Clock = std::chrono::steady_clock;
  const auto period = std::chrono::duration_cast<Clock::duration>(period_);
  auto next = Clock::now() + period;
  std::unique_lock lock(mutex_);
  while (!wake_.wait_until(lock, next, [this] { return stopping_; })) {
    lock.unlock();
    show(monitor_.snapshot());
    // A fixed cadence, but no burst of catch-up lines after a stall (a suspended job).
    next += period;
    if (next <= Clock::now()) next = Clock::now() + period;
    lock.lock();
  }
  if (config_.mode == ProgressConfig::Mode::bar) sink_.clear_status();
}

void Progress::show(const RunSnapshot& snap) {
  if (snap.map.empty()) return;  // before the first map: nothing to count yet
  if (config_.mode == ProgressConfig::Mode::bar) {
    sink_.show_status(format_progress_bar(snap, config_.tool, config_.columns));
  } else {
    sink_.progress_line(format_progress_line(snap, config_.tool));
  }
}

}  // namespace binflow
