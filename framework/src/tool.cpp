#include "binflow/tool.hpp"

#include <algorithm>
#include <optional>

#include <fmt/format.h>

#include "binflow/error.hpp"
#include "binflow/file_checks.hpp"

namespace binflow {

RunSettings StandardParameters::run_settings(MemoryLimit resolved_memory_limit) const {
  return RunSettings{parse_schedule(schedule), max_failures, chatter, seed,
                     std::move(resolved_memory_limit)};
}

ToolOutput ToolOutput::from(MapResult result) {
  ToolOutput out;
  out.table = std::move(result.table);
  out.stats = std::move(result.stats);
  out.failed = result.failed;
  out.interrupted = result.interrupted;
  out.stopped_early = result.stopped_early;
  return out;
}

std::vector<std::pair<std::string, RunProvenance::Value>> RunProvenance::records() const {
  return {{"tool", tool},
          {"version", version},
          {"command_line", command_line},
          {"ranks", std::int64_t{ranks}},
          {"threads_per_rank", std::int64_t{threads}},
          {"schedule_used", schedule},
          {"start_time", start_time},
          {"end_time", end_time}};
}

void Tool::write_fits(const std::string& /*path*/, const ToolOutput& /*out*/,
                      const RunProvenance& /*provenance*/) const {
  throw InternalError(fmt::format("{} has no FITS output", name()));
}

ParameterSet& Tool::parameters() {
  if (!params_) {
    params_ = std::make_unique<ParameterSet>();
    declare(*params_);
    declare_standard(*params_);
  }
  return *params_;
}

void Tool::declare_standard(ParameterSet& p) {
  StandardParameters& s = standard_;
  p.add("nthreads", s.nthreads, "threads per rank; 0 = all cores granted to this rank",
        Range<int>{0, 4096})
      .launch_only();
  p.add("oversubscribe", s.oversubscribe,
        "allow nthreads above this rank's share of the node's cores")
      .launch_only();
  p.add("chatter", s.chatter,
        "verbosity: 0 silent, 1 warnings, 2 normal, 3 adds per-bin timing lines, 4 debug",
        Range<int>{0, 4})
      .launch_only();
  if (writes_outfile() || uses_bins()) {
    p.add("logfile", s.logfile, "also write the ordered log to this file (rank 0)")
        .launch_only()
        .output_file();
    p.add("outfile", s.outfile,
          uses_bins()
              ? "output file: HDF5 (/results, /run) or FITS (see format); empty = print only"
              : "output file")
        .launch_only()
        .output_file();
    if (uses_bins()) {
      p.add_choice("format", s.format, {"auto", "hdf5", "fits"},
                   "format of outfile: auto (FITS if it ends in .fits or .fits.gz, else HDF5), "
                   "hdf5, or fits (tables Gammapy reads; only tools with FITS output)")
          .launch_only();
    }
    p.add("clobber", s.clobber, "overwrite an existing outfile").launch_only();
    p.add("seed", s.seed, "seed of the random streams; bin k draws from stream (seed, k)");
  }
  if (!uses_bins()) return;
  p.add_choice("schedule", s.schedule, {"static", "cyclic", "dynamic"},
               "how bins are spread over ranks: contiguous blocks, round robin, or "
               "self-scheduling from rank 0 (best for uneven bins)")
      .launch_only();
  p.add("resume", s.resume,
        "skip the bins already in the checkpoint <outfile>.ckpt of an interrupted run")
      .launch_only();
  p.add("max_failures", s.max_failures,
        "stop taking new bins after this many bins failed; 0 = never stop",
        Range<std::int64_t>{0, {}})
      .launch_only();
  p.add("memory_limit", s.memory_limit,
        "resident memory per rank: a bin whose events would not fit fails instead of the "
        "rank being killed; auto (the scheduler's memory per task, if any), none, or a size "
        "such as 2GB, 1.5GiB, 800M")
      .launch_only();
  p.add("progress", s.progress,
        "seconds between progress lines on standard error when it is not a terminal (a "
        "terminal gets a live bar); 0 = none",
        Range<double>{0.0, 86400.0})
      .launch_only();
  p.add("dashboard", s.dashboard,
        "serve the live report page on http://127.0.0.1:PORT while the run goes on (rank 0); "
        "0 = off",
        Range<int>{0, 65535})
      .launch_only();
}

// Before validate(), which may read them (simulate reads inirf and profile_file there): a
// FIFO would block that read forever. A missing file is left to the reader, which says so.
void Tool::check_inputs() {
  for (const PathParameter& p : parameters().paths()) {
    if (p.value.empty() || p.role == PathRole::output_file) continue;
    const std::optional<std::string> problem =
        input_file_problem(p.value, p.role == PathRole::input_file_or_directory, false);
    if (problem) throw UsageError(fmt::format("{}: '{}' {}", p.name, p.value, *problem));
  }
}

void Tool::configure(const std::vector<std::string>& args) {
  parameters().parse(args);
  seed_given_ = parameters().given("seed");
  check_inputs();
  validate();
}

void Tool::configure_typed(const std::function<void()>& set, int chatter) {
  parameters().restore_defaults();
  set();
  standard_.chatter = chatter;
  seed_given_ = false;
  check_inputs();
  validate();
}

std::string Tool::help() { return parameters().help(name(), summary()); }

std::vector<std::pair<std::string, std::string>> Tool::parameter_values(ParameterSet::Which which) {
  return parameters().values(which);
}

void ToolRegistry::add_entry(ToolInfo info, Factory factory) {
  entries_.push_back(Entry{info, std::move(factory)});
}

std::unique_ptr<Tool> ToolRegistry::create(std::string_view name) const {
  for (const Entry& e : entries_) {
    if (e.info.name == name) return e.factory();
  }
  throw UsageError(fmt::format("'{}' is not a binflow tool (binflow --help lists them)", name));
}

std::string ToolRegistry::help(std::string_view program) const {
  std::string out = fmt::format(
      "{} {}: bin-parallel analyses over MPI ranks with budgeted threads\n\n"
      "usage: {} TOOL [parameters]      (mpirun -n N {} TOOL ... for N ranks)\n"
      "       {} TOOL --help            every parameter with default, range and meaning\n\n"
      "tools:\n",
      program, version(), program, program, program);
  std::size_t width = 0;
  for (const Entry& e : entries_) width = std::max(width, e.info.name.size());
  for (const Entry& e : entries_) {
    out += fmt::format("  {:<{}}  {}\n", e.info.name, width, e.info.summary);
  }
  return out;
}

std::string_view version() { return BINFLOW_VERSION; }

}  // namespace binflow
