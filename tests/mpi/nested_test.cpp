// Nested invocation at 1-4 ranks, counted from inside and outside (issue 4): a tool invoked
// in a bin of a two-thread map (the shape of a pull trial: an in-memory simulation, then a
// fit of its events) sees one OpenMP thread and runs parallel regions of one; during the
// nested runs the process starts no thread and no thread but the calling one computes
// (the main thread excepted: on rank 0 of a multi-rank dynamic map it is the framework's
// service thread). A control region of two threads shows that the census sees a second
// compute thread when there is one. Nested failures fail only the calling bin.
//
// Census: /proc/self/status `Threads:` for the thread count, and the utime + stime ticks of
// /proc/self/task/<tid>/stat for who computed (10 ms ticks, so the nested work is sized to
// a few hundred ms: a four-hour simulation of ~370k events and its fit).
#include <mpi.h>
#include <omp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "binflow/error.hpp"
#include "binflow/executor.hpp"
#include "binflow/tool.hpp"
#include "science/event_file.hpp"
#include "science/likelihood.hpp"
#include "science/response.hpp"
#include "science/roi.hpp"
#include "science/simulate.hpp"

namespace binflow {
namespace {

bool is_root() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank == 0;
}

/// `Threads:` of /proc/self/status: every thread of the process (MPI's included).
std::int64_t process_threads() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Threads:", 0) == 0) return std::stoll(line.substr(8));
  }
  throw std::runtime_error("/proc/self/status has no Threads: line");
}

/// CPU ticks (utime + stime) of every thread of the process, by thread id.
std::map<long, long> thread_ticks() {
  std::map<long, long> out;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream stat(entry.path() / "stat");
    std::string text;
    std::getline(stat, text);
    const auto paren = text.rfind(')');
    if (paren == std::string::npos) continue;  // the thread ended meanwhile
    std::istringstream fields(text.substr(paren + 2));
    std::vector<std::string> f{std::istream_iterator<std::string>(fields), {}};
    // Fields after the command: state is field 3 of stat(5), utime 14, stime 15.
    if (f.size() < 13) continue;
    out[std::stol(entry.path().filename().string())] = std::stol(f[11]) + std::stol(f[12]);
  }
  return out;
}

long this_thread_id() { return syscall(SYS_gettid); }

/// Threads other than `except` whose CPU ticks grew by at least `min_ticks`.
std::vector<long> busy_threads(const std::map<long, long>& before,
                               const std::map<long, long>& after, long min_ticks,
                               const std::vector<long>& except) {
  std::vector<long> out;
  for (const auto& [tid, ticks] : after) {
    if (std::find(except.begin(), except.end(), tid) != except.end()) continue;
    const auto it = before.find(tid);
    if (ticks - (it == before.end() ? 0 : it->second) >= min_ticks) out.push_back(tid);
  }
  return out;
}

int region_team() {
  int team = 0;
#pragma omp parallel default(none) shared(team)
  {
#pragma omp single
    team = omp_get_num_threads();
  }
  return team;
}

/// A stand-in for simulate and fit built on the same science library calls (the tools
/// library is not linked into the MPI tests): stage=simulate draws a default observation
/// into the events handed over with capture(), stage=fit fits the events handed over with
/// use(). Its one bin records what it sees.
class CensusTool final : public Tool {
public:
  static constexpr ToolInfo info{"census", "nested simulate or fit, counted"};
  CensusTool() : Tool(info) {}
  void capture(science::Events* out) { events_out_ = out; }
  void use(const science::Events* in) { events_in_ = in; }

  static Schema schema() {
    return Schema{{"omp_max", ColumnType::i64, "", ""},  {"omp_team", ColumnType::i64, "", ""},
                  {"ranks", ColumnType::i64, "", ""},    {"threads_peak", ColumnType::i64, "", ""},
                  {"n_events", ColumnType::i64, "", ""}, {"n0", ColumnType::f64, "", ""}};
  }

protected:
  void declare(ParameterSet& params) override {
    params.add_choice("stage", stage_, {"simulate", "fit"}, "what to run");
    params.add("duration", duration_, "observation length, s", Range<double>{1.0, 1e6});
    params.add("throw_inside", throw_inside_, "the nested bin throws");
  }
  ToolOutput execute(RunContext& ctx) override {
    const int ranks = ctx.runtime().size();
    return ToolOutput::from(ctx.map("census", BinPlan::trials(1), schema(), [&](BinContext& bin) {
      if (throw_inside_) throw std::runtime_error("census bin fails on purpose");
      const std::int64_t omp_max = omp_get_max_threads();
      const std::int64_t team = region_team();
      std::int64_t peak = process_threads();
      const science::Observation obs = science::default_observation(duration_);
      const science::Response response(obs.irf, "embedded instrument");
      std::int64_t n = 0;
      double n0 = 0.0;
      if (stage_ == "simulate") {
        *events_out_ = science::simulate_events(obs, response, science::SourceModel{},
                                                science::TimeProfile::constant(),
                                                ctx.settings().seed, 60.0, bin.budget().threads());
        n = static_cast<std::int64_t>(events_out_->size());
      } else {
        const science::FitSettings settings;
        const science::RoiEvents roi =
            science::select_roi(*events_in_, obs.gti, obs.gti.start.front(), obs.gti.stop.back(),
                                obs.info.deadtime_fraction, settings);
        const science::FitResult f =
            science::BinFitter(response, settings).fit(roi, bin.budget().threads());
        n = f.n_events;
        n0 = f.n0;
      }
      peak = std::max(peak, process_threads());
      bin.log().info("census {}: {} events", stage_, n);
      return Row{omp_max, team, std::int64_t{ranks}, peak, n, n0};
    }));
  }

private:
  std::string stage_;
  double duration_ = 14400.0;
  bool throw_inside_ = false;
  science::Events* events_out_ = nullptr;
  const science::Events* events_in_ = nullptr;
};

struct Captured {
  std::string text;
  LogTarget target() {
    return [this](std::string_view t) { text.append(t); };
  }
};

/// An outer run over all ranks whose bins have two threads (the caller of a nested tool
/// may have more than one; the nested tool must still get one). The budget is applied to
/// the calling thread as the driver does (the executor applies it to its own threads).
RunContext outer_context(Schedule schedule, LogTarget target) {
  const ThreadBudget two = ThreadBudget::nested(2);
  two.apply();
  return RunContext(Runtime::create(Communicator::borrow(MPI_COMM_WORLD)), two,
                    RunSettings{schedule, 0, 2, 5}, std::move(target), nullptr, false);
}

void spin_for(double seconds) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < until) {
  }
}

class EverySchedule : public testing::TestWithParam<Schedule> {};

TEST_P(EverySchedule, SimulateThenFitNestedRunOneComputeThread) {
  Captured log;
  RunContext ctx = outer_context(GetParam(), log.target());
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const Schema schema{{"outer_omp_max", ColumnType::i64, "", ""},
                      {"sim_omp_max", ColumnType::i64, "", ""},
                      {"sim_team", ColumnType::i64, "", ""},
                      {"fit_omp_max", ColumnType::i64, "", ""},
                      {"fit_team", ColumnType::i64, "", ""},
                      {"ranks", ColumnType::i64, "", ""},
                      {"threads_before", ColumnType::i64, "", ""},
                      {"threads_peak", ColumnType::i64, "", ""},
                      {"busy_other", ColumnType::i64, "", ""},
                      {"self_ticks", ColumnType::i64, "", ""},
                      {"control_busy", ColumnType::i64, "", ""},
                      {"outer_omp_after", ColumnType::i64, "", ""},
                      {"n_simulated", ColumnType::i64, "", ""},
                      {"n_fitted", ColumnType::i64, "", ""},
                      {"n0", ColumnType::f64, "", ""}};
  const MapResult result = ctx.map("outer", BinPlan::trials(size), schema, [](BinContext& bin) {
    const std::int64_t outer_max = omp_get_max_threads();
    const long self = this_thread_id();
    const long main_thread = getpid();
    const std::int64_t threads_before = process_threads();
    const std::map<long, long> ticks_before = thread_ticks();

    science::Events events;
    CensusTool simulate;
    simulate.capture(&events);
    const ToolOutput sim = bin.invoke(simulate, {"stage=simulate"});
    CensusTool fit;
    fit.use(&events);
    const ToolOutput fitted = bin.invoke(fit, {"stage=fit"});

    const std::map<long, long> ticks_after = thread_ticks();
    const std::int64_t threads_after = process_threads();
    const long min_ticks = 3;  // 30 ms, against a nested run of a few hundred ms
    const auto others = busy_threads(ticks_before, ticks_after, min_ticks, {self, main_thread});
    const long self_ticks = ticks_after.at(self) - ticks_before.at(self);

    // Control: two threads spinning for 0.4 s must show up as two busy threads.
    const std::map<long, long> control_before = thread_ticks();
#pragma omp parallel default(none) num_threads(2)
    spin_for(0.4);
    const auto control = busy_threads(control_before, thread_ticks(), min_ticks, {});

    const std::int64_t peak = std::max(
        {threads_after, sim.table.i64(0, "threads_peak"), fitted.table.i64(0, "threads_peak")});
    bin.log().info("threads before {}, peak {}, busy others {}", threads_before, peak,
                   others.size());
    return Row{outer_max,
               sim.table.i64(0, "omp_max"),
               sim.table.i64(0, "omp_team"),
               fitted.table.i64(0, "omp_max"),
               fitted.table.i64(0, "omp_team"),
               sim.table.i64(0, "ranks"),
               threads_before,
               peak,
               static_cast<std::int64_t>(others.size()),
               std::int64_t{self_ticks},
               static_cast<std::int64_t>(control.size()),
               std::int64_t{omp_get_max_threads()},
               sim.table.i64(0, "n_events"),
               fitted.table.i64(0, "n_events"),
               fitted.table.f64(0, "n0")};
  });
  ASSERT_EQ(result.failed, 0) << log.text;
  if (!is_root()) return;
  ASSERT_EQ(result.table.size(), static_cast<std::size_t>(size));
  const science::Observation obs = science::default_observation(14400.0);
  const science::Response response(obs.irf, "embedded instrument");
  for (std::size_t i = 0; i < result.table.size(); ++i) {
    const Table& t = result.table;
    SCOPED_TRACE(fmt::format("bin {} on rank {}", i, result.stats.bins[i].rank));
    EXPECT_EQ(t.i64(i, "outer_omp_max"), 2);
    EXPECT_EQ(t.i64(i, "sim_omp_max"), 1);
    EXPECT_EQ(t.i64(i, "sim_team"), 1);
    EXPECT_EQ(t.i64(i, "fit_omp_max"), 1);
    EXPECT_EQ(t.i64(i, "fit_team"), 1);
    EXPECT_EQ(t.i64(i, "ranks"), 1) << "nested runs are on MPI_COMM_SELF";
    EXPECT_EQ(t.i64(i, "outer_omp_after"), 2) << "the budget scope did not restore";
    // No thread is started by the nested runs (a single-rank map runs in the caller).
    EXPECT_EQ(t.i64(i, "threads_peak"), t.i64(i, "threads_before"));
    EXPECT_EQ(t.i64(i, "busy_other"), 0) << "a thread other than the caller computed";
    EXPECT_GE(t.i64(i, "self_ticks"), 3) << "the census did not see the caller's work";
    EXPECT_GE(t.i64(i, "control_busy"), 2) << "the census cannot see a second thread";
    // The nested simulation drew from the first seed derived from the bin's stream.
    const RngStream stream(5, i);
    const science::Events direct =
        science::simulate_events(obs, response, science::SourceModel{},
                                 science::TimeProfile::constant(), stream.derive_seed(0), 60.0, 1);
    EXPECT_EQ(t.i64(i, "n_simulated"), static_cast<std::int64_t>(direct.size()));
    EXPECT_GT(t.i64(i, "n_fitted"), 50000);
    EXPECT_NEAR(t.f64(i, "n0"), 3.5e-11, 0.1e-11);
  }
  // The nested runs' blocks are indented into the calling bin's block.
  EXPECT_NE(log.text.find("bin 0\n  bin 0\n    census simulate: "), std::string::npos) << log.text;
}

INSTANTIATE_TEST_SUITE_P(Schedules, EverySchedule,
                         testing::Values(Schedule::static_block, Schedule::dynamic),
                         [](const auto& param) { return std::string(schedule_name(param.param)); });

TEST(NestedFailure, FailsOnlyTheCallingBin) {
  Captured log;
  RunContext ctx = outer_context(Schedule::dynamic, log.target());
  const Schema schema{{"nested_status", ColumnType::str, "", ""}};
  const MapResult result = ctx.map("outer", BinPlan::trials(8), schema, [](BinContext& bin) {
    science::Events events;
    CensusTool simulate;
    simulate.capture(&events);
    const std::int64_t k = bin.bin().index;
    // Bin 2: an invalid parameter passed through (the nested tool's bad input).
    // Bin 5: the nested tool's own bin throws; its table says so and the caller decides.
    std::vector<std::string> args{"stage=simulate", k == 2 ? "duration=-5" : "duration=60"};
    if (k == 5) args.emplace_back("throw_inside=yes");
    const ToolOutput out = bin.invoke(simulate, args);
    const std::string status = out.table.str(0, "status");
    if (status != "ok") throw std::runtime_error("nested census: " + out.table.str(0, "message"));
    return Row{status};
  });
  EXPECT_EQ(result.failed, 2);
  if (!is_root()) return;
  ASSERT_EQ(result.table.size(), 8u);
  for (std::size_t i = 0; i < 8; ++i) {
    const bool fails = i == 2 || i == 5;
    EXPECT_EQ(result.table.str(i, "status"), fails ? "failed" : "ok") << i;
  }
  EXPECT_NE(result.table.str(2, "message").find("nested census: duration"), std::string::npos)
      << result.table.str(2, "message");
  EXPECT_NE(result.table.str(5, "message").find("fails on purpose"), std::string::npos)
      << result.table.str(5, "message");
}

}  // namespace
}  // namespace binflow
