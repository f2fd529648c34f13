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

#include "binflow/bins.hpp"
#include "binflow/ordered_log.hpp"
#include "binflow/rng.hpp"
#include "binflow/runtime.hpp"
#include "binflow/table.hpp"
#include "binflow/thread_budget.hpp"

namespace binflow {

class Checkpoint;
class Tool;
struct ToolOutput;

/// How bins are spread over ranks.
enum class Schedule {
  static_block,  ///< rank r runs the r-th contiguous block; no messages but results
  cyclic,        ///< rank r runs bins r, r+size, ...
  dynamic,       ///< self-scheduling from rank 0 with chunks sized to ~2 ms of work
};
/// "static", "cyclic" or "dynamic"; UsageError otherwise.
Schedule parse_schedule(std::string_view name);
std::string_view schedule_name(Schedule schedule);

/// Per-bin accounting, stored in /run/bins.
struct BinStats {
  std::int64_t index = 0;
  int rank = 0;
  double start = 0.0;  ///< s since the start of the map on the bin's rank
  double end = 0.0;
  double wall = 0.0;  ///< s
  double cpu = 0.0;   ///< process CPU s since the previous bin on this thread ended (its
                      ///< OpenMP threads and the executor's work between the bins included)
  int threads = 1;    ///< thread budget the bin ran with
  std::int64_t peak_rss_kib = 0;  ///< process peak resident set after the bin
  bool resumed = false;           ///< taken from the checkpoint, not run now
};

/// Per-rank accounting, stored in /run/ranks.
struct RankStats {
  int rank = 0;
  double busy = 0.0;  ///< s spent inside bins
  double idle = 0.0;  ///< s of the map's wall time not spent inside bins
  std::int64_t bins = 0;
};

/// Settings of one run, from the standard parameters.
struct RunSettings {
  Schedule schedule = Schedule::dynamic;
  std::int64_t max_failures = 0;  ///< stop taking bins after this many failures; 0 = never
  int chatter = 2;
  std::uint64_t seed = 1;
};

/// Outcome of a map; the table and statistics are filled on rank 0 only.
struct MapResult {
  /// Columns `bin`, the tool's columns, `status`, `message`; one row per completed bin
  /// in bin order (all bins unless the run was interrupted or stopped early).
  Table table;
  std::vector<BinStats> bins;
  std::vector<RankStats> ranks;
  double wall = 0.0;
  std::int64_t failed = 0;     ///< bins with status "failed" (all ranks agree)
  bool interrupted = false;    ///< a stop signal arrived (all ranks agree)
  bool stopped_early = false;  ///< max_failures was reached (all ranks agree)

  /// sum(busy) / (ranks * wall): 1 is perfect.
  [[nodiscard]] double efficiency() const;
  /// max(busy) / mean(busy) - 1: 0 is perfect.
  [[nodiscard]] double imbalance() const;
};

/// What a bin function sees: its bin, logger, random stream and thread budget.
class BinContext {
public:
  BinContext(const Bin& bin, spdlog::logger& log, RngStream rng, const ThreadBudget& budget)
      : bin_(bin), log_(log), rng_(rng), budget_(budget) {}
  [[nodiscard]] const Bin& bin() const { return bin_; }
  [[nodiscard]] spdlog::logger& log() { return log_; }
  /// The stream (seed, bin index).
  [[nodiscard]] RngStream& rng() { return rng_; }
  [[nodiscard]] const ThreadBudget& budget() const { return budget_; }
  /// Overrides the row's status ("ok" by default; e.g. "empty"). "failed" is set by
  /// the executor when the function throws.
  void set_status(std::string status) { status_ = std::move(status); }
  [[nodiscard]] const std::string& status() const { return status_; }

  /// Runs `tool` nested inside this bin: configured from `args` (same syntax as the
  /// command line), on MPI_COMM_SELF with a budget of `threads` threads, logging into
  /// this bin's block, seeded from this bin's stream (the k-th invocation of a bin
  /// gets the k-th derived seed). Throws what the tool throws.
  ToolOutput invoke(Tool& tool, const std::vector<std::string>& args, int threads = 1);

private:
  ToolOutput invoke_unguarded(Tool& tool, const std::vector<std::string>& args, int threads);
  const Bin& bin_;
  spdlog::logger& log_;
  RngStream rng_;
  const ThreadBudget& budget_;
  std::string status_ = "ok";
  std::uint64_t invocations_ = 0;
};

/// The bin function: fills one row of the tool's schema.
using BinFunction = std::function<Row(BinContext&)>;

/// Set by SIGTERM/SIGUSR1 (see install_stop_handlers); read by the executor between bins.
[[nodiscard]] bool stop_requested();
/// Installs async-signal-safe handlers for SIGTERM and SIGUSR1 that set stop_requested().
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

  /// Collective over runtime().comm: runs `fn` for every bin of `plan` not already in
  /// the checkpoint under `name`, with the configured schedule. Thread budget is
  /// applied in every thread that runs bins. See MapResult for what comes back.
  MapResult map(std::string_view name, const BinPlan& plan, const Schema& schema,
                const BinFunction& fn);

private:
  Runtime runtime_;
  ThreadBudget budget_;
  RunSettings settings_;
  LogTarget log_target_;
  std::shared_ptr<spdlog::logger> log_;
  Checkpoint* checkpoint_;
  bool nested_;
};

}  // namespace binflow
