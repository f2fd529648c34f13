#pragma once
// The tool base: typed parameters (standard ones plus the tool's own), one execute()
// that runs the same from the command line and nested inside another tool's bin, and
// the driver that turns argv into a run with one funnel for every failure.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "binflow/executor.hpp"
#include "binflow/parameters.hpp"
#include "binflow/table.hpp"

namespace binflow {

/// The standard parameters every tool has (names follow ctools).
struct StandardParameters {
  int nthreads = 0;  ///< 0 = all cores granted to this rank
  bool oversubscribe = false;
  std::string schedule = "dynamic";
  std::string logfile;
  int chatter = 2;
  std::string outfile;
  bool clobber = false;
  std::uint64_t seed = 1;
  bool resume = false;
  std::int64_t max_failures = 0;
};

/// What a tool's run produced. Filled on rank 0 (other ranks: empty table).
struct ToolOutput {
  Table table;                   ///< written as /results
  std::vector<BinStats> bins;    ///< written as /run/bins
  std::vector<RankStats> ranks;  ///< written as /run/ranks
  double wall = 0.0;
  /// Extra /results attributes (summaries such as a pull's mean and width).
  std::vector<std::pair<std::string, std::string>> attributes;
  std::int64_t failed = 0;
  bool interrupted = false;
  bool stopped_early = false;
  bool has_results = true;  ///< false for tools that write no output file (info)

  /// Table, statistics and flags of one map.
  static ToolOutput from(MapResult result);
};

/// Base class of every tool. Not thread-safe; one run at a time per object.
class Tool {
public:
  Tool() = default;
  Tool(const Tool&) = delete;
  Tool& operator=(const Tool&) = delete;
  virtual ~Tool() = default;

  [[nodiscard]] virtual std::string name() const = 0;
  [[nodiscard]] virtual std::string summary() const = 0;

  /// Resets every parameter to its default, then parses `args` (command-line words
  /// without the tool name). UsageError naming the parameter on any problem.
  void configure(const std::vector<std::string>& args);
  /// --help text of this tool.
  [[nodiscard]] std::string help();
  /// Name -> value of every parameter after configure (provenance, checkpoint key).
  [[nodiscard]] std::vector<std::pair<std::string, std::string>> parameter_values();

  /// Collective over ctx.runtime().comm: runs the tool.
  ToolOutput run(RunContext& ctx);

  [[nodiscard]] const StandardParameters& standard() const { return standard_; }
  /// Whether the tool maps over bins: shows `schedule`, `resume`, `max_failures` and gets
  /// a checkpoint (default true).
  [[nodiscard]] virtual bool uses_bins() const { return true; }
  /// Whether the tool writes an output file: shows `outfile`, `clobber`, `logfile`,
  /// `seed`, and the driver checks the output path before the run (default true). A tool
  /// that maps bins gets its /results written by the driver; one that does not
  /// (ToolOutput::has_results false) writes `outfile` itself.
  [[nodiscard]] virtual bool writes_outfile() const { return true; }

protected:
  /// Declares the tool's own parameters (bound to members, whose values are defaults).
  virtual void declare(ParameterSet& params) = 0;
  /// Restores the tool's own parameters to their defaults before a new configure().
  virtual void reset() = 0;
  /// Cross-parameter checks after parsing; throw UsageError.
  virtual void validate() {}
  /// The work. Collective over ctx.runtime().comm.
  virtual ToolOutput execute(RunContext& ctx) = 0;

private:
  ParameterSet build_parameters();
  StandardParameters standard_;
};

/// The tools a driver knows, in the order `--help` lists them.
class ToolRegistry {
public:
  using Factory = std::function<std::unique_ptr<Tool>()>;
  void add(std::string name, std::string summary, Factory factory);
  [[nodiscard]] std::unique_ptr<Tool> create(std::string_view name) const;
  [[nodiscard]] std::string help(std::string_view program) const;

private:
  struct Entry {
    std::string name;
    std::string summary;
    Factory factory;
  };
  std::vector<Entry> entries_;
};

/// Collective over `comm`: runs `check` on rank 0 only (input validation that reads
/// files, say); if it throws, every rank throws AgreedError with rank 0's message and exit
/// status, so the run ends with one message and no MPI_Abort.
void agree_on_root(const Communicator& comm, const std::function<void()>& check);

/// Exit status for an exception (error.hpp): usage 2, io 3, AgreedError its own, else 4.
int exit_status_of(const std::exception& e);

/// The driver behind `binflow TOOL ARGS...`: MPI start-up, parameter parsing, thread
/// budget, output checks, the run, the final HDF5 file (written to a temporary name and
/// renamed), the run report, and one funnel that turns any failure into one line and
/// the documented exit status (error.hpp). Collective over MPI_COMM_WORLD.
int run_main(int argc, char** argv, const ToolRegistry& registry);

/// Version string of the framework.
std::string_view version();

}  // namespace binflow
