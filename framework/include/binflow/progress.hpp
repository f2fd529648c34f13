#pragma once
// Rank 0's progress report of a top-level run on standard error: a live one-line bar when
// stderr is a terminal, a line every `progress` seconds otherwise. It shows completed bins
// (RunMonitor's `done`), never dispatched ones, and goes through the run's RunLogSink, whose
// mutex keeps it from cutting into the ordered log; the log file never sees it.
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "binflow/run_monitor.hpp"

namespace binflow {

class RunLogSink;

/// How the progress is shown; decided once, at start-up (progress_config).
struct ProgressConfig {
  enum class Mode { bar, lines };
  Mode mode = Mode::lines;
  double interval = 30.0;  ///< s between lines (Mode::lines)
  int columns = 80;        ///< the terminal's width (Mode::bar)
  std::string tool;        ///< the tool's name, first on the bar and the line
};

/// The progress of a run of `tool` with the standard parameters `chatter` and `progress`,
/// reading whether standard error is a terminal (and its width) now, once: nullopt for none
/// (chatter 0, or progress 0 without a terminal). A terminal with TERM=dumb gets lines, as it
/// cannot erase a line. Call on rank 0 at start-up only (it reads the environment).
std::optional<ProgressConfig> progress_config(std::string_view tool, int chatter, double progress);

/// "12.3 s" (`tenths`) or "13 s" (rounded up) under a minute, then "4 min 05 s", then
/// "2 h 07 min".
std::string format_duration(double seconds, bool tenths);
/// The terminal bar, at most `columns - 1` characters (a full-width line would wrap on some
/// terminals and `\r` would then redraw only its last row):
/// `synthetic:bins [######------]  120/250 bins  2 failed  12.3 s  ETA 13 s`. The bar shrinks
/// to fit and is left out below 10 characters; "ETA ?" before the first bin of this run.
std::string format_progress_bar(const RunSnapshot& snap, std::string_view tool, int columns);
/// The line of batch mode (no newline):
/// `binflow: progress synthetic:bins 120/250 bins (48%), 2 failed, 12.3 s elapsed, ETA 13 s`.
std::string format_progress_line(const RunSnapshot& snap, std::string_view tool);

/// A thread on rank 0 that reads `monitor`'s snapshots and shows them through `sink`: every
/// 0.2 s as the bar, or every `interval` s as a line (none before the first interval). It
/// wakes only then or when stopped, so it costs the run nothing measurable. Construct and
/// destroy from one thread; the sink and the monitor must outlive it.
class Progress {
public:
  Progress(const RunMonitor& monitor, RunLogSink& sink, ProgressConfig config);
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  /// Stops the thread (within milliseconds) and erases the bar: the run's final state is
  /// its log's own summary line.
  ~Progress();

private:
  void loop();
  void show(const RunSnapshot& snap);

  const RunMonitor& monitor_;
  RunLogSink& sink_;
  ProgressConfig config_;
  std::chrono::duration<double> period_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;  // last: started once everything it reads is initialised
};

}  // namespace binflow
