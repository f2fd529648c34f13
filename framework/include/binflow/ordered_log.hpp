#pragma once
// Ordered logging: every bin logs into its own buffer; rank 0 writes each bin's block
// as soon as all lower bins are written, so the log of a run reads the same on any
// number of ranks. Lines that state timings, ranks or threads carry the marker
// `[run]` (see run_marker) and are the only lines allowed to differ between runs.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include <spdlog/logger.h>

namespace binflow {

/// Marker at the start of a line's text for lines that may differ between runs.
inline constexpr std::string_view run_marker = "[run] ";

/// ctools chatter 0..4 to a spdlog level: 0 off, 1 warnings and errors, 2 normal,
/// 3 verbose (adds per-bin timing lines), 4 debug.
spdlog::level::level_enum chatter_level(int chatter);

/// Where finished text goes: the console and log file on rank 0, or the calling bin's
/// buffer for a nested run. Thread-safe only if the target is.
using LogTarget = std::function<void(std::string_view text)>;

/// A reusable logger whose output collects in a buffer, one bin at a time. Above
/// `spill_bytes` the buffer moves to an anonymous temporary file, so a bin that logs a
/// lot is not capped and does not grow the heap without bound. Thread-safe logging.
class BinLog {
public:
  explicit BinLog(int chatter, std::size_t spill_bytes = std::size_t{16} << 20);
  BinLog(const BinLog&) = delete;
  BinLog& operator=(const BinLog&) = delete;
  ~BinLog();

  /// Starts a new block whose first line is `header` (unindented; dropped at chatter 0
  /// or 1 like any info line). Lines logged after it are indented by two spaces.
  void begin(std::string_view header);
  [[nodiscard]] spdlog::logger& logger() { return *logger_; }
  /// Ends the block and returns its text (read back from the spill file if any).
  [[nodiscard]] std::string take();

private:
  class Sink;
  std::shared_ptr<Sink> sink_;
  std::shared_ptr<spdlog::logger> logger_;
};

/// Rank 0's writer: accepts finished bin blocks in any order and writes them in order
/// of position 0, 1, 2, ... as soon as the block before is written. Not thread-safe.
class OrderedLog {
public:
  explicit OrderedLog(LogTarget target) : target_(std::move(target)) {}
  /// Block of the bin at `position` (position in the plan, not the bin index).
  void submit(std::size_t position, std::string text);
  /// Marks `position` as having no block (writes nothing for it).
  void skip(std::size_t position) { submit(position, {}); }
  /// Writes whatever is still held, in order, even past gaps (end of an interrupted run).
  void flush_remaining();
  [[nodiscard]] std::size_t written() const { return next_; }

private:
  LogTarget target_;
  // Blocks that arrived before their turn, indexed by position - next_ (positions are
  // dense, so a ring of slots beats a tree).
  std::deque<std::optional<std::string>> waiting_;
  std::size_t next_ = 0;
};

/// Console plus optional log file of a top-level run (rank 0). The log file is opened,
/// truncated, only by open_file(), which the driver calls once the tool's input checks have
/// passed: a run refused on bad input leaves an existing log file as it was. Text written
/// before goes to the console at once and is held for the file (a few lines: the run's
/// header and the tool's messages before its first map). Thread-safe.
class RunLogSink {
public:
  /// `logfile` empty: console only. Opens nothing. Text is flushed at most every
  /// `flush_interval` (a flush per bin would cost a system call per bin; 0.1 s keeps the
  /// console live; tests choose theirs to make the flushes predictable).
  RunLogSink(std::string logfile, bool console,
             std::chrono::milliseconds flush_interval = std::chrono::milliseconds(100));
  RunLogSink(const RunLogSink&) = delete;
  RunLogSink& operator=(const RunLogSink&) = delete;
  ~RunLogSink();
  /// Opens (truncates) the log file and writes the text held so far; nothing after the
  /// first call or without a log file. IoError if the file cannot be opened.
  void open_file();
  void write(std::string_view text);
  void flush();
  /// Flushes and closes the log file, checking both.
  void close();
  /// The first failed write (log file or console) as one line, or empty. A failed log file is
  /// written no further; the run goes on (its results are not lost) and ends with exit 3.
  [[nodiscard]] std::string write_error();

  /// Progress on standard error (see progress.hpp), under the same lock as write(), so that it
  /// never cuts into a line of the log; never in the log file. show_status() draws `line` as
  /// the terminal's status line (`\r<line>\033[K`, no newline) in place of the one shown; while
  /// one is shown, the console's text is held and written at the sink's flushes (every 0.1 s,
  /// and at show_status, clear_status, flush, close): the line erased, the text written and
  /// flushed, the line redrawn. Runs without a status line pay nothing. clear_status() erases
  /// it for good.
  void show_status(std::string line);
  void clear_status();
  /// One line on standard error (batch mode), after flushing the console: with stdout and
  /// stderr in one file, a log line held in stdout's buffer is never cut by it.
  void progress_line(std::string_view line);

private:
  void flush_locked();
  void record_file_error(const char* what);
  void write_console_locked(std::string_view text);
  void draw_status_locked() const;
  void erase_status_locked() const;
  std::mutex mutex_;
  std::string write_error_;
  std::string logfile_;
  bool opened_ = false;
  std::string held_;  // for the file, until open_file()
  std::FILE* file_ = nullptr;
  bool console_;
  std::string status_;   // the status line shown on stderr; empty: none
  std::string pending_;  // console text held while a status line is shown
  std::chrono::milliseconds flush_interval_;
  std::chrono::steady_clock::time_point last_flush_ = std::chrono::steady_clock::now();
};

/// A logger that writes every line straight to `target` (tool messages outside bins).
std::shared_ptr<spdlog::logger> make_target_logger(const std::string& name, LogTarget target,
                                                   int chatter);

}  // namespace binflow
