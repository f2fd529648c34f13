// The command-line driver: argv -> a run, and one funnel from any failure to one line
// and the documented exit status.
#include "binflow/driver.hpp"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <functional>
#include <optional>
#include <string_view>
#include <variant>

#include <fmt/format.h>

#include "binflow/checkpoint.hpp"
#include "binflow/dashboard.hpp"
#include "binflow/error.hpp"
#include "binflow/file_checks.hpp"
#include "binflow/h5.hpp"
#include "binflow/progress.hpp"
#include "binflow/report_page.hpp"
#include "binflow/run_monitor.hpp"

namespace binflow {

namespace {

namespace fs = std::filesystem;

std::string utc_now() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

// Words after a lone "--" belong to another command line (binflow submit -- TOOL ARGS).
bool wants_help(const std::vector<std::string>& words) {
  const auto end = std::find(words.begin(), words.end(), "--");
  return std::any_of(words.begin(), end,
                     [](const std::string& w) { return w == "--help" || w == "-h"; });
}

std::string checkpoint_path(const std::string& outfile) { return outfile + ".ckpt"; }

bool ends_with_ignoring_case(std::string_view text, std::string_view tail) {
  if (text.size() < tail.size()) return false;
  return std::equal(tail.begin(), tail.end(), text.end() - static_cast<std::ptrdiff_t>(tail.size()),
                    [](char a, char b) {
                      return std::tolower(static_cast<unsigned char>(a)) ==
                             std::tolower(static_cast<unsigned char>(b));
                    });
}

// The standard parameter `format` of the tools whose results the driver writes (those that
// map bins; simulate writes its own HDF5 file): FITS when asked for, or by the outfile's name
// under auto.
bool wants_fits(const Tool& tool) {
  const StandardParameters& s = tool.standard();
  if (!tool.uses_bins()) return false;
  if (s.format == "fits") return true;
  if (s.format != "auto" || s.outfile.empty()) return false;
  return ends_with_ignoring_case(s.outfile, ".fits") ||
         ends_with_ignoring_case(s.outfile, ".fits.gz");
}

void require_writable_directory(std::string_view parameter, const fs::path& file) {
  const fs::path dir = file.has_parent_path() ? file.parent_path() : fs::path(".");
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw UsageError(fmt::format("{}: directory '{}' does not exist", parameter, dir.string()));
  }
  if (access(dir.c_str(), W_OK) != 0) {
    throw UsageError(fmt::format("{}: directory '{}' is not writable", parameter, dir.string()));
  }
}

// Rank 0, before anything is opened (Tool::configure has checked the inputs): every output
// path is a regular file or nothing yet, in a writable directory, and no output names the
// same file as an input or as another output.
void check_paths(Tool& tool) {
  std::vector<PathParameter> paths = tool.path_parameters();
  std::erase_if(paths, [](const PathParameter& p) { return p.value.empty(); });
  for (const PathParameter& p : paths) {
    if (p.role != PathRole::output_file) continue;
    if (const std::optional<std::string> problem = input_file_problem(p.value, false, false)) {
      throw UsageError(fmt::format("{}: '{}' {} (an output is written as a regular file)", p.name,
                                   p.value, *problem));
    }
    require_writable_directory(p.name, p.value);
  }
  const std::string& outfile = tool.standard().outfile;
  if (!outfile.empty() && tool.uses_bins()) {
    paths.push_back({"the checkpoint", checkpoint_path(outfile), PathRole::output_file});
  }
  for (std::size_t i = 0; i < paths.size(); ++i) {
    for (std::size_t j = i + 1; j < paths.size(); ++j) {
      const PathParameter& a = paths[i];
      const PathParameter& b = paths[j];
      if (a.role != PathRole::output_file && b.role != PathRole::output_file) continue;
      if (!same_file(a.value, b.value)) continue;
      // Name the output first: it is the one the run would have overwritten.
      const PathParameter& out = a.role == PathRole::output_file ? a : b;
      const PathParameter& other = &out == &a ? b : a;
      throw UsageError(fmt::format("{}: '{}' is the same file as {} ('{}'); give another name",
                                   out.name, out.value, other.name, other.value));
    }
  }
}

// Rank 0: what the output settings allow, before any work is done.
enum class OutputPlan { write, nothing_to_do };

// resume=yes on a complete output: fine if this configuration wrote it (nothing to do), bad
// input otherwise. HDF5 outputs record the fingerprint; a FITS output cannot be checked here
// (the framework does not read FITS) and is taken as complete (docs/framework.md).
void check_complete_output(const std::string& outfile, const std::string& fingerprint, bool fits) {
  if (fits || fingerprint.empty()) return;
  std::string stored;
  try {
    const h5::Location file = h5::open_file(outfile);
    const h5::Location run = file.open_group("run");
    if (!run.has_attribute("fingerprint")) {
      throw UsageError(fmt::format("outfile: {} is complete but does not record what wrote it "
                                   "(an older binflow): clobber=yes recomputes it",
                                   outfile));
    }
    stored = run.read_string_attribute("fingerprint");
  } catch (const IoError& e) {
    throw UsageError(fmt::format("outfile: {} exists but is not a complete binflow output ({})",
                                 outfile, e.what()));
  }
  if (stored != fingerprint) {
    throw UsageError(fmt::format(
        "outfile: {} is complete but another configuration wrote it ({}): resume=yes has "
        "nothing of this run to continue; clobber=yes recomputes it",
        outfile, fingerprint_difference(stored, fingerprint, "it")));
  }
}

OutputPlan check_output(const Tool& tool, const std::string& fingerprint) {
  const StandardParameters& s = tool.standard();
  if (s.outfile.empty()) {
    if (s.resume) throw UsageError("resume: needs an outfile (the checkpoint is <outfile>.ckpt)");
    if (s.format == "fits") throw UsageError("format: fits needs an outfile");
    return OutputPlan::write;
  }
  if (wants_fits(tool) && !tool.writes_fits()) {
    if (s.format == "fits") {
      throw UsageError(
          fmt::format("format: {} has no FITS output (format=hdf5 writes HDF5)", tool.name()));
    }
    throw UsageError(fmt::format(
        "outfile: {} names a FITS file and {} has no FITS output (another name, or format=hdf5 "
        "to write HDF5 under this one)",
        s.outfile, tool.name()));
  }
  const fs::path out(s.outfile);
  const fs::path dir = out.has_parent_path() ? out.parent_path() : fs::path(".");
  if (!fs::is_directory(dir)) {
    throw UsageError(fmt::format("outfile: directory '{}' does not exist", dir.string()));
  }
  if (access(dir.c_str(), W_OK) != 0) {
    throw UsageError(fmt::format("outfile: directory '{}' is not writable", dir.string()));
  }
  if (!s.resume && !s.clobber && journal_exists(checkpoint_path(s.outfile))) {
    throw UsageError(
        fmt::format("outfile: {} holds the checkpoint of an interrupted run "
                    "(resume=yes continues it, clobber=yes starts again)",
                    checkpoint_path(s.outfile)));
  }
  if (fs::exists(out)) {
    if (s.resume && !journal_exists(checkpoint_path(s.outfile))) {
      check_complete_output(s.outfile, fingerprint, wants_fits(tool));
      return OutputPlan::nothing_to_do;
    }
    if (!s.clobber && !s.resume) {
      throw UsageError(fmt::format("outfile: {} exists (clobber=yes overwrites it)", s.outfile));
    }
  }
  return OutputPlan::write;
}

// The attributes of /run: the run's figures and the placement of its ranks.
using RunValue = std::variant<double, std::int64_t, std::string>;
std::vector<std::pair<std::string, RunValue>> run_attributes(
    const RunStats& stats, const std::vector<NodePlacement>& placement) {
  std::vector<std::string> nodes;
  nodes.reserve(placement.size());
  for (const NodePlacement& n : placement) {
    nodes.push_back(fmt::format("{}: {} ranks x threads = {} cores used / {} available", n.host,
                                n.ranks, n.threads, n.cores_available));
  }
  return {{"wall", stats.wall},
          {"efficiency", stats.efficiency()},
          {"imbalance", stats.imbalance()},
          {"nodes", static_cast<std::int64_t>(placement.size())},
          {"placement", fmt::format("{}", fmt::join(nodes, "; "))}};
}

void write_run_group(const h5::Location& file, const RunStats& stats,
                     const std::vector<NodePlacement>& placement) {
  const h5::Location run = file.create_group("run");
  for (const auto& [name, value] : run_attributes(stats, placement)) {
    std::visit([&run, &key = name](const auto& v) { run.write_attribute(key, v); }, value);
  }
  stats.bins_table().write(run.create_group("bins"));
  stats.ranks_table().write(run.create_group("ranks"));
}

// What the dashboard's page draws once the run is over: what write_hdf5 writes, as text.
ReportData report_data_of(const ToolOutput& out, const RunProvenance& p, const std::string& source) {
  ReportData data;
  data.source = source;
  data.tool = p.tool;
  data.attributes = p.parameters;
  for (const auto& [name, value] : p.records()) {
    data.attributes.emplace_back(
        name, std::visit([](const auto& v) { return fmt::format("{}", v); }, value));
  }
  for (const auto& pair : out.attributes) data.attributes.push_back(pair);
  data.results = out.table;
  for (const auto& [name, value] : run_attributes(out.stats, p.nodes)) {
    data.run.emplace_back(name,
                          std::visit([](const auto& v) { return fmt::format("{}", v); }, value));
  }
  data.bins = out.stats.bins_table();
  data.ranks = out.stats.ranks_table();
  return data;
}

void write_hdf5(const std::string& path, const ToolOutput& out, const RunProvenance& p) {
  h5::Location file = h5::create_file(path);
  {
    const h5::Location results = file.create_group("results");
    out.table.write(results);
    for (const auto& [name, value] : p.parameters) results.write_attribute(name, value);
    for (const auto& [name, value] : p.records()) {
      std::visit([&, &key = name](const auto& v) { results.write_attribute(key, v); }, value);
    }
    for (const auto& [name, value] : out.attributes) results.write_attribute(name, value);
    write_run_group(file, out.stats, p.nodes);
    if (!p.fingerprint.empty()) file.open_group("run").write_attribute("fingerprint", p.fingerprint);
  }
  file.close();
}

// The temporaries `<outfile>.tmp.<pid>[.gz]` that runs killed during their final write left
// (kill -9 gives no chance to clean up): the run that completes the output removes them.
void remove_stale_temporaries(const std::string& outfile) {
  const fs::path out(outfile);
  const fs::path dir = out.has_parent_path() ? out.parent_path() : fs::path(".");
  const std::string prefix = out.filename().string() + ".tmp.";
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    std::string rest = name.substr(prefix.size());
    if (ends_with_ignoring_case(rest, ".gz")) rest.resize(rest.size() - 3);
    if (rest.empty() || rest.find_first_not_of("0123456789") != std::string::npos) continue;
    std::error_code ignored;
    fs::remove(e.path(), ignored);
  }
}

// The final output appears under its name only when complete: written to a temporary name
// in the same directory, then renamed. A FITS name ending in .gz keeps that ending: the
// tool's FITS writer compresses what it writes to such a name.
void write_output(const Tool& tool, bool fits, const ToolOutput& out, const RunProvenance& p) {
  const std::string& outfile = tool.standard().outfile;
  std::string temporary = fmt::format("{}.tmp.{}", outfile, getpid());
  if (fits && ends_with_ignoring_case(outfile, ".gz")) temporary += ".gz";
  try {
    if (fits) {
      tool.write_fits(temporary, out, p);
    } else {
      write_hdf5(temporary, out, p);
    }
    fs::rename(temporary, outfile);
  } catch (...) {
    std::error_code ignored;
    fs::remove(temporary, ignored);
    throw;
  }
  remove_stale_temporaries(outfile);
}

std::string run_summary(const RunStats& stats) {
  std::string out = fmt::format(
      "{}wall {:.3f} s on {} ranks, parallel efficiency {:.3f}, load imbalance {:.3f}", run_marker,
      stats.wall, stats.ranks.size(), stats.efficiency(), stats.imbalance());
  const auto largest = std::max_element(
      stats.ranks.begin(), stats.ranks.end(),
      [](const RankStats& a, const RankStats& b) { return a.peak_rss_kib < b.peak_rss_kib; });
  if (largest != stats.ranks.end() && largest->peak_rss_kib > 0) {
    out += fmt::format(", peak memory {} on rank {}",
                       format_memory_size(1024.0 * static_cast<double>(largest->peak_rss_kib)),
                       largest->rank);
  }
  return out;
}

// The checkpoint belongs to one tool, the parameters that change its results and the content
// of its inputs (input_identity: a file replaced or rewritten between an interrupted run and
// its resume is refused, instead of mixing two inputs in one output).
std::string checkpoint_fingerprint(Tool& tool) {
  std::vector<std::string> key{fmt::format("tool={}", tool.name())};
  for (const auto& [name, value] : tool.parameter_values(ParameterSet::Which::results_only)) {
    key.push_back(fmt::format("{}={}", name, value));
  }
  for (const PathParameter& p : tool.path_parameters()) {
    if (p.role == PathRole::output_file || p.value.empty()) continue;
    for (const std::string& line : input_identity(p.value)) {
      key.push_back(fmt::format("content of {}: {}", p.name, line));
    }
  }
  return fmt::format("{}\n", fmt::join(key, "\n"));
}

class Driver {
public:
  Driver(int argc, char** argv, const ToolRegistry& registry)
      : words_(argv + 1, argv + argc),
        registry_(registry),
        world_(Communicator::borrow(MPI_COMM_WORLD)) {
    for (int i = 0; i < argc; ++i) command_line_ += fmt::format("{}{}", i ? " " : "", argv[i]);
  }

  // Steps whose failures all ranks see alike: parameters and input checks.
  std::optional<int> prepare();
  // The run; a failure here may be on one rank only.
  int run();
  int run_tool();
  // After bad input found during a fresh run: its journal holds nothing worth resuming.
  void discard_checkpoint() {
    if (checkpoint_ && !tool_->standard().resume) checkpoint_->remove();
  }

private:
  void print(const std::string& text) const {
    if (world_.is_root()) std::fputs(text.c_str(), stdout);
  }
  void log_placement(RunContext& ctx);
  void start_dashboard(RunContext& ctx);

  std::vector<std::string> words_;
  const ToolRegistry& registry_;
  Communicator world_;
  std::string command_line_;
  std::unique_ptr<Tool> tool_;
  std::optional<Runtime> runtime_;
  std::optional<ThreadBudget> budget_;
  MemoryLimit memory_limit_;  // this rank's
  std::string fingerprint_;  // rank 0: what the checkpoint and the output are bound to
  std::optional<CheckpointLock> lock_;  // rank 0; outlives checkpoint_ (declared first)
  std::unique_ptr<Checkpoint> checkpoint_;
  std::unique_ptr<RunLogSink> sink_;  // rank 0
  RunMonitor monitor_;                // rank 0: what the progress line and the dashboard show
  std::vector<NodePlacement> nodes_;  // rank 0: where the run's ranks are
  std::unique_ptr<Dashboard> dashboard_;  // rank 0, with dashboard=PORT
  std::string start_time_ = utc_now();
};

std::optional<int> Driver::prepare() {
  if (words_.empty() || words_[0] == "--help" || words_[0] == "-h" || words_[0] == "help") {
    print(registry_.help("binflow"));
    return words_.empty() ? exit_status::usage : exit_status::ok;
  }
  if (words_[0] == "--version") {
    print(fmt::format("binflow {}\n", version()));
    return exit_status::ok;
  }
  tool_ = registry_.create(words_[0]);
  const std::vector<std::string> args(words_.begin() + 1, words_.end());
  if (wants_help(args)) {
    print(tool_->help());
    return exit_status::ok;
  }
  tool_->configure(args);
  const StandardParameters& s = tool_->standard();
  const Runtime& runtime = runtime_.emplace(Runtime::create(Communicator::borrow(MPI_COMM_WORLD)));
  const LaunchEnvironment launch = LaunchEnvironment::from_environ();
  budget_.emplace(ThreadBudget::negotiate(runtime, {s.nthreads, s.oversubscribe}, launch)).apply();
  memory_limit_ = MemoryLimit::resolve(s.memory_limit, launch, runtime.local_size());
  if (!tool_->writes_outfile() && !tool_->uses_bins()) return std::nullopt;
  OutputPlan plan = OutputPlan::write;
  world_.agree_on_root([&] {
    check_paths(*tool_);
    if (!s.outfile.empty() && tool_->uses_bins()) {
      // First: a second run on this outfile is refused before it looks at the checkpoint.
      lock_.emplace(CheckpointLock::acquire(checkpoint_path(s.outfile), s.outfile));
      fingerprint_ = checkpoint_fingerprint(*tool_);
    }
    plan = check_output(*tool_, fingerprint_);
    if (plan == OutputPlan::write && !fingerprint_.empty()) {
      checkpoint_ = std::make_unique<Checkpoint>(checkpoint_path(s.outfile), fingerprint_, s.resume);
      if (!checkpoint_->damage().empty()) {
        std::fprintf(stderr, "binflow: warning: %s\n", checkpoint_->damage().c_str());
      }
    }
    // Opens nothing: run() opens the log file once the tool's input checks have passed.
    if (plan == OutputPlan::write) sink_ = std::make_unique<RunLogSink>(s.logfile, s.chatter > 0);
  });
  int nothing = plan == OutputPlan::nothing_to_do ? 1 : 0;
  world_.broadcast(nothing);
  if (nothing) {
    print(fmt::format("{} is complete and has no checkpoint: nothing to resume\n", s.outfile));
    return exit_status::ok;
  }
  // A stop signal during the start-up (MPI, parameters, output checks): stop before anything
  // is opened. Collective, so that every rank leaves alike even if one was signalled.
  if (world_.max(stop_requested() ? 1 : 0) != 0) {
    if (world_.is_root()) {
      std::fputs("binflow: stopped by a signal before any work was done; nothing was written\n",
                 stderr);
    }
    return exit_status::interrupted;
  }
  return std::nullopt;
}

// dashboard=PORT: rank 0 serves the live page; a port it cannot have is a warning only.
void Driver::start_dashboard(RunContext& ctx) {
  const int port = tool_->standard().dashboard;
  if (port == 0 || !tool_->uses_bins()) return;
  const std::string page = fmt::format(
      R"({{"live":{{"state":"/state.json","report":"/report.json","refresh_ms":1000}},)"
      R"("tool":{},"source":"live run","attributes":{}}})",
      json_string(tool_->name()), json_pairs(tool_->parameter_values()));
  std::string problem;
  monitor_.record_bins();
  dashboard_ = Dashboard::start(port, monitor_, page, problem);
  if (dashboard_) {
    ctx.log().info("{}dashboard on {}", run_marker, dashboard_->url());
  } else {
    ctx.log().warn("{}{}", run_marker, problem);
  }
}

void Driver::log_placement(RunContext& ctx) {
  const Placement placement = gather_placement(ctx.runtime(), ctx.budget());
  if (!ctx.is_root()) return;
  nodes_ = placement.nodes;
  for (const NodePlacement& node : placement.nodes) {
    ctx.log().info("{}node {}: {} ranks x threads = {} cores used / {} available", run_marker,
                   node.host, node.ranks, node.threads, node.cores_available);
  }
  for (const std::string& w : placement.oversubscription_warnings())
    ctx.log().warn("{}{}", run_marker, w);
  for (const std::string& w : placement.rank_warnings()) ctx.log().warn("{}{}", run_marker, w);
}

// A log that could not be written ends the run with exit 3 and one line, after the results
// (written or not) are settled: nothing finished is lost for a full log disk.
int Driver::run() {
  const int status = run_tool();
  monitor_.run_finished();
  if (dashboard_) {
    dashboard_->linger(std::chrono::seconds(2));
    dashboard_.reset();
  }
  if (!sink_) return status;
  sink_->close();
  const std::string error = sink_->write_error();
  if (error.empty()) return status;
  std::fprintf(stderr, "binflow: error: %s\n", error.c_str());
  return status == exit_status::ok || status == exit_status::bins_failed ? exit_status::io : status;
}

int Driver::run_tool() {
  const StandardParameters& s = tool_->standard();
  // Tools without bins (info) print straight to the console and have no log sink.
  if (world_.is_root() && !sink_) sink_ = std::make_unique<RunLogSink>("", s.chatter > 0);
  RunLogSink* sink = sink_.get();
  LogTarget target = [sink](std::string_view text) {
    if (sink != nullptr) sink->write(text);
  };
  const int ranks = world_.size();
  if (!runtime_ || !budget_) throw InternalError("driver: run() before prepare()");
  RunContext ctx(std::move(*runtime_), *budget_, s.run_settings(memory_limit_), target,
                 checkpoint_.get(), false);
  // Rank 0's progress on stderr lasts until this function returns, however it returns: the
  // bar is erased before anything after the run's summary (an error) reaches the terminal.
  std::optional<Progress> progress;
  if (world_.is_root()) {
    ctx.set_monitor(&monitor_);
    const auto shown = progress_config(tool_->name(), s.chatter, s.progress);
    if (shown && tool_->uses_bins() && sink != nullptr) progress.emplace(monitor_, *sink, *shown);
  }
  // The log file is truncated only when the tool's checks of its inputs have passed: at its
  // first map, or when a tool that never maps returns. The lines before are held for it.
  // The checkpoint likewise: an old journal is replaced only then.
  Checkpoint* checkpoint = checkpoint_.get();
  if (sink != nullptr || checkpoint != nullptr) {
    ctx.on_inputs_checked([sink, checkpoint] {
      if (checkpoint != nullptr) checkpoint->open();
      if (sink != nullptr) sink->open_file();
    });
  }
  if (tool_->uses_bins() || tool_->writes_outfile()) {
    ctx.log().info("binflow {} {}", tool_->name(), version());
    ctx.log().info("{}{} ranks, schedule {}, {} threads on rank 0", run_marker, ranks, s.schedule,
                   ctx.budget().threads());
    log_placement(ctx);
    if (!memory_limit_.none()) {
      ctx.log().info("{}memory_limit {} per rank ({})", run_marker,
                     format_memory_size(static_cast<double>(memory_limit_.bytes())),
                     memory_limit_.source());
    }
  }
  if (world_.is_root()) start_dashboard(ctx);
  ToolOutput out = tool_->run(ctx);
  // Stopped by a signal before any bin finished in a fresh run: no work, so nothing is left
  // (the log file and the checkpoint are not opened, or the journal holding no bin removed).
  if (out.interrupted && out.table.size() == 0 && !s.resume) {
    if (checkpoint_) checkpoint_->remove();
    if (ctx.is_root()) {
      std::fputs("binflow: stopped by a signal before any work was done; nothing was written\n",
                 stderr);
    }
    return exit_status::interrupted;
  }
  ctx.inputs_checked();
  if (!ctx.is_root() || !out.has_results) {
    if (sink) sink->flush();
    return out.interrupted
               ? exit_status::interrupted
               : (out.failed > 0 || out.stopped_early ? exit_status::bins_failed : exit_status::ok);
  }
  if (out.interrupted) {
    ctx.log().warn(
        "{}interrupted by a signal with {} bins done; the checkpoint {} is flushed: "
        "rerun with resume=yes to finish",
        run_marker, out.table.size(),
        checkpoint_ ? checkpoint_->path() : std::string("(none: no outfile)"));
    sink->flush();
    return exit_status::interrupted;
  }
  if (s.chatter >= 2) {
    std::string text = out.table.to_text(tool_->console_view());
    if (!text.empty() && text.back() == '\n') text.pop_back();
    ctx.log().info("{}", text);
  }
  const RunProvenance provenance{std::string(tool_->name()),
                                 std::string(version()),
                                 command_line_,
                                 start_time_,
                                 utc_now(),
                                 ranks,
                                 ctx.budget().threads(),
                                 s.schedule,
                                 tool_->parameter_values(),
                                 fingerprint_,
                                 nodes_};
  if (!s.outfile.empty()) {
    write_output(*tool_, wants_fits(*tool_), out, provenance);
    if (checkpoint_) checkpoint_->remove();
    ctx.log().info("wrote {}", s.outfile);
  }
  if (dashboard_) {
    const std::string source = s.outfile.empty() ? std::string("live run") : s.outfile;
    dashboard_->set_report(report_json(report_data_of(out, provenance, source)));
  }
  ctx.log().info("{}", run_summary(out.stats));
  if (out.failed > 0) {
    ctx.log().error("{} of {} bins failed{}", out.failed, out.table.size(),
                    out.stopped_early ? " (stopped early: max_failures reached)" : "");
  }
  sink->flush();
  return out.failed > 0 || out.stopped_early ? exit_status::bins_failed : exit_status::ok;
}

// A stop signal during MPI's start-up is held until the start-up is done (then prepare()
// sees it and the run exits 75): Open MPI 4.1's singleton start-up fails when a signal
// interrupts its wait for the daemon it spawns ("Unable to start a daemon on the local
// node"), SA_RESTART or not (e2e.test_faults, SIGTERM before the first bin on 1 rank).
class DeferStopSignals {
public:
  DeferStopSignals() {
    sigemptyset(&stops_);
    for (const int s : {SIGTERM, SIGINT, SIGUSR1}) sigaddset(&stops_, s);
    pthread_sigmask(SIG_BLOCK, &stops_, &before_);
  }
  DeferStopSignals(const DeferStopSignals&) = delete;
  DeferStopSignals& operator=(const DeferStopSignals&) = delete;
  ~DeferStopSignals() { pthread_sigmask(SIG_SETMASK, &before_, nullptr); }

private:
  sigset_t stops_{};
  sigset_t before_{};
};

void report(int rank, int size, const std::exception& e) {
  if (size > 1) {
    std::fprintf(stderr, "binflow: error on rank %d: %s\n", rank, e.what());
  } else {
    std::fprintf(stderr, "binflow: error: %s\n", e.what());
  }
  std::fflush(stderr);
}

}  // namespace

int run_main(int argc, char** argv, const ToolRegistry& registry) {
  std::optional<Environment> env;
  try {
    // First: a stop signal during MPI's start-up (a third of a second for a singleton) ends
    // the run with exit_status::interrupted too, not by the default action.
    install_stop_handlers();
    const DeferStopSignals deferred;
    env.emplace(argc, argv);
  } catch (const std::exception& e) {
    report(0, 1, e);
    return exit_status_of(e);
  }
  int rank = 0;
  int size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  std::optional<Driver> driver;
  try {
    driver.emplace(argc, argv, registry);
    if (const auto done = driver->prepare()) return *done;
  } catch (const std::exception& e) {
    // Every rank reached the same verdict: rank 0 says it once, nobody aborts.
    if (rank == 0) report(rank, 1, e);
    return exit_status_of(e);
  }
  try {
    return driver->run();
  } catch (const AgreedError& e) {
    // Every rank has it (bad input found during the run): say it once, abort nothing.
    if (rank == 0) report(rank, 1, e);
    driver->discard_checkpoint();
    return e.status();
  } catch (const std::exception& e) {
    report(rank, size, e);
    Environment::abort(exit_status_of(e));
  }
}

}  // namespace binflow
