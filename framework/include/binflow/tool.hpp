#pragma once
// The tool base: a tool declares its name and summary once (ToolInfo), its parameters once
// (bound to members whose default initialisers are the defaults), and one execute() that
// runs the same from the command line and nested inside another tool's bin.
#include <concepts>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "binflow/executor.hpp"
#include "binflow/parameters.hpp"
#include "binflow/run_stats.hpp"
#include "binflow/table.hpp"

namespace binflow {

/// What a tool is called and what it does: declared once, as `static constexpr ToolInfo
/// info` of the tool class, and read from there by the registry and --help.
struct ToolInfo {
  std::string_view name;
  std::string_view summary;
};

/// The standard parameters every tool has (names follow ctools). Only `seed` changes
/// what is computed; the others are launch_only() (see ParameterSet).
struct StandardParameters {
  int nthreads = 0;  ///< 0 = all cores granted to this rank
  bool oversubscribe = false;
  std::string schedule = "dynamic";
  std::string logfile;
  int chatter = 2;
  std::string outfile;
  std::string format = "auto";  ///< auto (FITS for *.fits, *.fits.gz), hdf5, fits
  bool clobber = false;
  std::uint64_t seed = 1;
  bool resume = false;
  std::int64_t max_failures = 0;
  std::string memory_limit = "auto";  ///< resolved by the driver (MemoryLimit::resolve)
  double progress = 30.0;  ///< s between progress lines when stderr is not a terminal; 0 = none
  int dashboard = 0;       ///< port of the live dashboard on 127.0.0.1; 0 = off

  /// The executor's settings of a run with these parameters and the memory_limit resolved
  /// for this rank (a nested run gets its caller's).
  [[nodiscard]] RunSettings run_settings(MemoryLimit resolved_memory_limit) const;
};

/// What a tool's run produced. Filled on rank 0 (other ranks: empty table).
struct ToolOutput {
  Table table;     ///< written as /results
  RunStats stats;  ///< written as /run
  /// Extra /results attributes (summaries such as a pull's mean and width).
  std::vector<std::pair<std::string, std::string>> attributes;
  std::int64_t failed = 0;
  bool interrupted = false;
  bool stopped_early = false;
  bool has_results = true;  ///< false for tools that write no output file (info)

  /// Table, statistics and flags of one map.
  static ToolOutput from(MapResult result);
};

/// Where, when and how a run was made, as its output records it (HDF5 /results attributes,
/// FITS header keywords). Filled by the driver on rank 0.
struct RunProvenance {
  std::string tool;
  std::string version;
  std::string command_line;
  std::string start_time;  ///< UTC, ISO 8601
  std::string end_time;    ///< UTC, ISO 8601: when the results were complete
  int ranks = 1;
  int threads = 1;  ///< thread budget of rank 0
  std::string schedule;
  /// Every parameter, name -> value as text, in declaration order.
  std::vector<std::pair<std::string, std::string>> parameters;
  /// What a checkpoint of this run is bound to (tool, result parameters, input contents):
  /// written to HDF5 outputs as /run's `fingerprint`, so resume=yes on a complete output can
  /// tell whether this run wrote it. Empty for runs without a checkpoint.
  std::string fingerprint;
  /// The nodes of the run and each one's ranks x threads = cores used / available (/run).
  std::vector<NodePlacement> nodes;

  using Value = std::variant<std::string, std::int64_t>;
  /// The run's own records, named and ordered as every output writes them after the
  /// parameters: tool, version, command_line, ranks, threads_per_rank, schedule_used,
  /// start_time, end_time.
  [[nodiscard]] std::vector<std::pair<std::string, Value>> records() const;
};

/// Base class of every tool. Not thread-safe; one run at a time per object. Not movable:
/// the parameter set binds the members.
class Tool {
public:
  explicit Tool(ToolInfo info) : info_(info) {}
  Tool(const Tool&) = delete;
  Tool& operator=(const Tool&) = delete;
  virtual ~Tool() = default;

  [[nodiscard]] std::string_view name() const { return info_.name; }
  [[nodiscard]] std::string_view summary() const { return info_.summary; }

  /// Restores every parameter to its default, then parses `args` (command-line words
  /// without the tool name), refuses input_file() parameters that name a FIFO, device,
  /// socket, unreachable name (too long, symlink loop) or a directory where none is
  /// allowed, and validates. UsageError naming the parameter on any problem.
  void configure(const std::vector<std::string>& args);
  /// The typed path of a nested call: restores every parameter to its default, lets `set`
  /// assign the tool's own members (no text is parsed), sets `chatter`, and validates.
  void configure_typed(const std::function<void()>& set, int chatter);
  /// --help text of this tool (the defaults, whatever was configured before).
  [[nodiscard]] std::string help();
  /// Name -> value of the parameters after configure: all of them (the /results
  /// attributes) or those that change results (checkpoint fingerprint, file provenance).
  [[nodiscard]] std::vector<std::pair<std::string, std::string>> parameter_values(
      ParameterSet::Which which = ParameterSet::Which::all);
  /// The path parameters (inputs and outputs) after configure; see PathRole.
  [[nodiscard]] std::vector<PathParameter> path_parameters() { return parameters().paths(); }
  /// Whether `seed` was given in the last configure (a nested run derives it otherwise).
  [[nodiscard]] bool seed_given() const { return seed_given_; }

  /// Collective over ctx.runtime().comm: runs the tool.
  ToolOutput run(RunContext& ctx) { return execute(ctx); }

  [[nodiscard]] const StandardParameters& standard() const { return standard_; }
  /// Sets the seed of the next run (nested runs: derived from the calling bin's stream).
  void set_seed(std::uint64_t seed) { standard_.seed = seed; }
  /// Whether the tool maps over bins: shows `schedule`, `resume`, `max_failures` and gets
  /// a checkpoint (default true).
  [[nodiscard]] virtual bool uses_bins() const { return true; }
  /// Whether the tool writes an output file: shows `outfile`, `clobber`, `logfile`,
  /// `seed`, and the driver checks the output path before the run (default true). A tool
  /// that maps bins gets its /results written by the driver; one that does not
  /// (ToolOutput::has_results false) writes `outfile` itself.
  [[nodiscard]] virtual bool writes_outfile() const { return true; }
  /// Whether the tool can write its results as FITS (the standard parameter `format`: an
  /// outfile ending in .fits or .fits.gz, or format=fits). The driver refuses FITS before
  /// the run for a tool that cannot (default false).
  [[nodiscard]] virtual bool writes_fits() const { return false; }
  /// Rank 0, after a complete run of a tool whose writes_fits() is true: writes `out` and
  /// `provenance` as a new FITS file at `path` (a temporary name the driver renames once this
  /// returns, or removes if it throws; a name ending in .gz asks for gzip compression). The
  /// default throws InternalError.
  virtual void write_fits(const std::string& path, const ToolOutput& out,
                          const RunProvenance& provenance) const;
  /// The columns of the table the console shows after a run (chatter >= 2); empty (the
  /// default) shows every column. The output file keeps every column whatever this says.
  [[nodiscard]] virtual std::vector<TextColumn> console_view() const { return {}; }

protected:
  /// Declares the tool's own parameters, bound to members; called once per object.
  virtual void declare(ParameterSet& params) = 0;
  /// Cross-parameter checks after parsing; throw UsageError.
  virtual void validate() {}
  /// The work. Collective over ctx.runtime().comm.
  virtual ToolOutput execute(RunContext& ctx) = 0;

private:
  ParameterSet& parameters();
  void declare_standard(ParameterSet& params);
  /// Every input_file() parameter given names a regular file (or an allowed directory).
  void check_inputs();

  ToolInfo info_;
  StandardParameters standard_;
  bool seed_given_ = false;
  std::unique_ptr<ParameterSet> params_;  // built on first use: members are bound then
};

/// The tools a driver knows, in the order `--help` lists them.
class ToolRegistry {
public:
  using Factory = std::function<std::unique_ptr<Tool>()>;

  /// Registers tool type T under T::info. A T constructible from the registry (submit,
  /// which checks the command lines it is given) gets this registry, which must outlive it.
  template <class T>
  requires std::derived_from<T, Tool>
  void add() {
    if constexpr (std::is_constructible_v<T, const ToolRegistry&>) {
      add_entry(T::info, [this] { return std::make_unique<T>(*this); });
    } else {
      add_entry(T::info, [] { return std::make_unique<T>(); });
    }
  }
  [[nodiscard]] std::unique_ptr<Tool> create(std::string_view name) const;
  [[nodiscard]] std::string help(std::string_view program) const;

private:
  void add_entry(ToolInfo info, Factory factory);
  struct Entry {
    ToolInfo info;
    Factory factory;
  };
  std::vector<Entry> entries_;
};

/// Version string of the framework.
std::string_view version();

}  // namespace binflow
