#include "binflow/tool.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "binflow/error.hpp"

namespace binflow {

ToolOutput ToolOutput::from(MapResult result) {
  ToolOutput out;
  out.table = std::move(result.table);
  out.bins = std::move(result.bins);
  out.ranks = std::move(result.ranks);
  out.wall = result.wall;
  out.failed = result.failed;
  out.interrupted = result.interrupted;
  out.stopped_early = result.stopped_early;
  return out;
}

ParameterSet Tool::build_parameters() {
  ParameterSet p;
  declare(p);
  StandardParameters& s = standard_;
  p.add("nthreads", s.nthreads, "threads per rank; 0 = all cores granted to this rank",
        Range<int>{0, 4096});
  p.add("oversubscribe", s.oversubscribe,
        "allow nthreads above this rank's share of the node's cores");
  p.add("chatter", s.chatter,
        "verbosity: 0 silent, 1 warnings, 2 normal, 3 adds per-bin timing lines, 4 debug",
        Range<int>{0, 4});
  if (writes_outfile() || uses_bins()) {
    p.add("logfile", s.logfile, "also write the ordered log to this file (rank 0)");
    p.add("outfile", s.outfile,
          uses_bins() ? "HDF5 output file (/results, /run); empty = print only" : "output file");
    p.add("clobber", s.clobber, "overwrite an existing outfile");
    p.add("seed", s.seed, "seed of the random streams; bin k draws from stream (seed, k)");
  }
  if (!uses_bins()) return p;
  p.add_choice("schedule", s.schedule, {"static", "cyclic", "dynamic"},
               "how bins are spread over ranks: contiguous blocks, round robin, or "
               "self-scheduling from rank 0 (best for uneven bins)");
  p.add("resume", s.resume,
        "skip the bins already in the checkpoint <outfile>.ckpt of an interrupted run");
  p.add("max_failures", s.max_failures,
        "stop taking new bins after this many bins failed; 0 = never stop",
        Range<std::int64_t>{0, {}});
  return p;
}

void Tool::configure(const std::vector<std::string>& args) {
  standard_ = StandardParameters{};
  reset();
  ParameterSet params = build_parameters();
  params.parse(args);
  validate();
}

std::string Tool::help() {
  standard_ = StandardParameters{};
  reset();
  return build_parameters().help(name(), summary());
}

std::vector<std::pair<std::string, std::string>> Tool::parameter_values() {
  return build_parameters().values();
}

ToolOutput Tool::run(RunContext& ctx) { return execute(ctx); }

void ToolRegistry::add(std::string name, std::string summary, Factory factory) {
  entries_.push_back(Entry{std::move(name), std::move(summary), std::move(factory)});
}

std::unique_ptr<Tool> ToolRegistry::create(std::string_view name) const {
  for (const Entry& e : entries_) {
    if (e.name == name) return e.factory();
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
  for (const Entry& e : entries_) width = std::max(width, e.name.size());
  for (const Entry& e : entries_) out += fmt::format("  {:<{}}  {}\n", e.name, width, e.summary);
  return out;
}

std::string_view version() { return BINFLOW_VERSION; }

ToolOutput BinContext::invoke(Tool& tool, const std::vector<std::string>& args, int threads) {
  // Bad input of a nested tool is this bin's failure, not bad input of the whole run.
  try {
    return invoke_unguarded(tool, args, threads);
  } catch (const UsageError& e) {
    throw Error(fmt::format("nested {}: {}", tool.name(), e.what()));
  } catch (const AgreedError& e) {
    throw Error(fmt::format("nested {}: {}", tool.name(), e.what()));
  }
}

ToolOutput BinContext::invoke_unguarded(Tool& tool, const std::vector<std::string>& args,
                                        int threads) {
  std::vector<std::string> words = args;
  const bool seeded = std::any_of(words.begin(), words.end(), [](const std::string& w) {
    return w.rfind("seed=", 0) == 0 || w.rfind("--seed", 0) == 0;
  });
  const std::uint64_t derived = rng_.derive_seed(invocations_++);
  if (!seeded) words.push_back(fmt::format("seed={}", derived));
  tool.configure(words);
  const StandardParameters& s = tool.standard();
  const RunSettings settings{parse_schedule(s.schedule), s.max_failures, s.chatter, s.seed};
  // The nested run's text becomes lines of this bin's block, indented one level more.
  LogTarget into_bin = [this](std::string_view text) {
    while (!text.empty()) {
      const auto eol = text.find('\n');
      log_.info("{}", text.substr(0, eol));
      text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);
    }
  };
  RunContext child(Runtime::self(), ThreadBudget::nested(threads), settings, std::move(into_bin),
                   nullptr, true);
  const ThreadBudgetScope scope(child.budget());
  return tool.run(child);
}

}  // namespace binflow
