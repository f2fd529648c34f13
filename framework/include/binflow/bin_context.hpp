#pragma once
// What a bin function sees: its bin, logger, random stream and thread budget, its row's
// status, and the way to run another tool nested inside the bin (typed or by text).
#include <concepts>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <spdlog/logger.h>

#include "binflow/bins.hpp"
#include "binflow/memory_limit.hpp"
#include "binflow/rng.hpp"
#include "binflow/table.hpp"
#include "binflow/thread_budget.hpp"

namespace binflow {

class Tool;
struct ToolOutput;

/// A tool that other tools call with a typed request and that returns a typed result
/// (BinContext::call): `Request` holds what the caller sets, `apply` assigns it to the
/// tool's members, `result_of` makes the typed result of the run's output. A rename of a
/// request or result member breaks the callers at compile time.
template <class T>
concept TypedTool = std::derived_from<T, Tool> &&
    requires(T& tool, typename T::Request request, const ToolOutput& out) {
  tool.apply(std::move(request));
  { tool.result_of(out) } -> std::same_as<typename T::Result>;
};

/// How a nested tool runs inside the calling bin.
struct NestedRun {
  int threads = 1;  ///< its thread budget (the caller's own budget at most, usually 1)
  int chatter = 2;  ///< its verbosity (its lines go into the calling bin's block)
};

/// Not thread-safe: one per bin, used by the thread that runs the bin.
class BinContext {
public:
  BinContext(const Bin& bin, spdlog::logger& log, RngStream rng, const ThreadBudget& budget,
             const MemoryLimit& memory_limit)
      : bin_(bin), log_(log), rng_(rng), budget_(budget), memory_limit_(memory_limit) {}
  [[nodiscard]] const Bin& bin() const { return bin_; }
  [[nodiscard]] spdlog::logger& log() { return log_; }
  /// The stream (seed, bin index).
  [[nodiscard]] RngStream& rng() { return rng_; }
  [[nodiscard]] const ThreadBudget& budget() const { return budget_; }
  /// The run's memory_limit: check allocations the input sizes against it before making
  /// them (MemoryLimit::check fails the bin). Nested runs inherit it.
  [[nodiscard]] const MemoryLimit& memory_limit() const { return memory_limit_; }
  /// Overrides the row's status (bin_status::ok by default; e.g. bin_status::empty).
  /// bin_status::failed is set by the executor when the function throws.
  void set_status(std::string_view status) { status_ = std::string(status); }
  [[nodiscard]] const std::string& status() const { return status_; }

  /// Runs `tool` nested inside this bin with a typed request (see TypedTool): on
  /// MPI_COMM_SELF with `how.threads` threads, logging into this bin's block, seeded from
  /// this bin's stream (the k-th nested run of a bin gets the k-th derived seed). Bad
  /// input of the nested tool fails this bin (Error), not the whole run.
  template <TypedTool T>
  typename T::Result call(T& tool, typename T::Request request, NestedRun how = {}) {
    return tool.result_of(guarded(tool, [&] {
      tool.configure_typed([&] { tool.apply(std::move(request)); }, how.chatter);
      return run_nested(tool, how.threads);
    }));
  }

  /// The text path, for tools not known in advance: `args` in the command-line syntax,
  /// otherwise as call(). Throws what the tool throws.
  ToolOutput invoke(Tool& tool, const std::vector<std::string>& args, int threads = 1);

private:
  ToolOutput guarded(Tool& tool, const std::function<ToolOutput()>& run);
  ToolOutput run_nested(Tool& tool, int threads);

  const Bin& bin_;
  spdlog::logger& log_;
  RngStream rng_;
  const ThreadBudget& budget_;
  const MemoryLimit& memory_limit_;
  std::string status_ = std::string(bin_status::ok);
  std::uint64_t invocations_ = 0;
};

}  // namespace binflow
