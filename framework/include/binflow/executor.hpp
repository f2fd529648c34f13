#pragma once
// The bin executor: runs a function for every bin of a plan across the ranks of a run,
// returns the rows on rank 0 in bin order, streams each bin's log block in order,
// checkpoints completed bins, and keeps going when a bin throws.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <spdlog/logger.h>

#include "binflow/bin_context.hpp"
#include "binflow/bins.hpp"
#include "binflow/memory_limit.hpp"
#include "binflow/ordered_log.hpp"
#include "binflow/rng.hpp"
#include "binflow/run_stats.hpp"
#include "binflow/runtime.hpp"
#include "binflow/table.hpp"
#include "binflow/thread_budget.hpp"

namespace binflow {

class Checkpoint;
class RunMonitor;

/// How bins are spread over ranks.
enum class Schedule {
  static_block,  ///< rank r runs the r-th contiguous block; no messages but results
  cyclic,        ///< rank r runs bins r, r+size, ...
  dynamic,       ///< self-scheduling from rank 0 with chunks sized to ~10 ms of work
};
/// "static", "cyclic" or "dynamic"; UsageError otherwise.
Schedule parse_schedule(std::string_view name);
std::string_view schedule_name(Schedule schedule);

/// Settings of one run, from the standard parameters.
struct RunSettings {
  Schedule schedule = Schedule::dynamic;
  std::int64_t max_failures = 0;  ///< stop taking bins after this many failures; 0 = never
  int chatter = 2;
  std::uint64_t seed = 1;
  MemoryLimit memory_limit{};  ///< per rank; bins check their large allocations against it
};

/// Outcome of a map; the table and statistics are filled on rank 0 only.
struct MapResult {
  /// Columns `bin`, the tool's columns, `status`, `message`; one row per completed bin
  /// in bin order (all bins unless the run was interrupted or stopped early).
  Table table;
  RunStats stats;
  std::int64_t failed = 0;     ///< bins with status bin_status::failed (all ranks agree)
  bool interrupted = false;    ///< a stop signal arrived (all ranks agree)
  bool stopped_early = false;  ///< max_failures was reached (all ranks agree)
};

/// The bin function: fills one row of the tool's schema.
using BinFunction = std::function<Row(BinContext&)>;

/// How a map may run its bins.
struct MapOptions {
  /// The bin function may run for several bins at once on several threads (it guards
  /// whatever it shares). A rank with a budget of N >= 2 threads then runs N bins at once,
  /// one thread each, when it has at least 128 N of them; the results, the ordered log and
  /// the random streams are those of one bin at a time. Each bin's memory bound is the
  /// rank's divided by N.
  bool concurrent_bins = false;
};

/// Set by SIGTERM/SIGINT/SIGUSR1 (see install_stop_handlers); read by the driver before the
/// work starts and by the executor between bins.
[[nodiscard]] bool stop_requested();
/// Installs async-signal-safe handlers for SIGTERM, SIGINT and SIGUSR1 that set
/// stop_requested().
void install_stop_handlers();
/// For tests: set or clear the stop flag as a signal would.
void request_stop(bool value = true);

/// Everything a tool's run needs: geometry, thread budget, settings, the log, and the
/// checkpoint. One per top-level run; a nested invocation gets a child context.
class RunContext {
public:
  /// `checkpoint` may be null (no checkpointing: nested runs, runs without outfile).
  RunContext(Runtime runtime, ThreadBudget budget, RunSettings settings, LogTarget log_target,
             Checkpoint* checkpoint, bool nested);
  RunContext(const RunContext&) = delete;
  RunContext& operator=(const RunContext&) = delete;
  RunContext(RunContext&&) = default;
  RunContext& operator=(RunContext&&) = delete;
  ~RunContext();

  [[nodiscard]] const Runtime& runtime() const { return runtime_; }
  [[nodiscard]] const ThreadBudget& budget() const { return budget_; }
  [[nodiscard]] const RunSettings& settings() const { return settings_; }
  [[nodiscard]] bool nested() const { return nested_; }
  [[nodiscard]] bool is_root() const { return runtime_.rank() == 0; }
  /// Tool messages outside bins; written by rank 0, discarded on other ranks.
  [[nodiscard]] spdlog::logger& log() { return *log_; }

  /// Sets what inputs_checked() runs, once (the driver: open the log file).
  void on_inputs_checked(std::function<void()> hook) { inputs_checked_ = std::move(hook); }
  /// The tool's checks of its inputs have passed; map() calls it before its first bin, a
  /// tool that never maps may call it earlier than the end of its run. Runs the hook set by
  /// on_inputs_checked() the first time, nothing after. Not thread-safe.
  void inputs_checked() {
    if (!inputs_checked_) return;
    const std::function<void()> hook = std::move(inputs_checked_);
    inputs_checked_ = nullptr;
    hook();
  }

  /// Sets the monitor that rank 0's maps report to (progress line, dashboard); top-level runs
  /// only, the monitor outliving the context. Null: none.
  void set_monitor(RunMonitor* monitor) { monitor_ = monitor; }

  /// Collective over runtime().comm: runs `fn` for every bin of `plan` not already in
  /// the checkpoint under `name`, with the configured schedule. Thread budget is
  /// applied in every thread that runs bins. See MapResult for what comes back.
  MapResult map(std::string_view name, const BinPlan& plan, const Schema& schema,
                const BinFunction& fn, MapOptions options = {});

private:
  Runtime runtime_;
  ThreadBudget budget_;
  RunSettings settings_;
  LogTarget log_target_;
  std::shared_ptr<spdlog::logger> log_;
  Checkpoint* checkpoint_;
  RunMonitor* monitor_ = nullptr;  // rank 0 of a top-level run, if the driver set one
  bool nested_;
  std::function<void()> inputs_checked_;  // rank 0 only (the log file and the checkpoint)
  bool mapped_ = false;                    // a map has started (every rank)
};

}  // namespace binflow
