// The executor at 1-4 ranks: rows and log blocks in bin order for every schedule,
// random streams independent of placement, failures contained, max_failures, stop and
// resume, nested invocation on MPI_COMM_SELF with one thread.
#include "binflow/executor.hpp"

#include <omp.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "binflow/checkpoint.hpp"
#include "binflow/error.hpp"
#include "binflow/tool.hpp"

namespace binflow {
namespace {

const Schema test_schema{
    {"twice", ColumnType::f64, "", ""},
    {"draw", ColumnType::f64, "", ""},
    {"label", ColumnType::str, "", ""},
};

Row simple_row(BinContext& ctx) {
  ctx.log().info("first line of bin {}", ctx.bin().index);
  ctx.log().info("second line of bin {}", ctx.bin().index);
  return Row{2.0 * static_cast<double>(ctx.bin().index), ctx.rng().uniform(),
             fmt::format("b{}", ctx.bin().index)};
}

struct Captured {
  std::string text;
  LogTarget target() {
    return [this](std::string_view t) { text.append(t); };
  }
};

RunContext make_context(const RunSettings& settings, LogTarget target,
                        Checkpoint* checkpoint = nullptr, int threads = 1) {
  return RunContext(Runtime::create(Communicator::borrow(MPI_COMM_WORLD)),
                    ThreadBudget::nested(threads), settings, std::move(target), checkpoint, false);
}

std::string expected_log(std::int64_t bins) {
  std::string text;
  for (std::int64_t i = 0; i < bins; ++i) {
    text += fmt::format("bin {}\n  first line of bin {}\n  second line of bin {}\n", i, i, i);
  }
  return text;
}

bool is_root() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank == 0;
}

class EverySchedule : public testing::TestWithParam<Schedule> {};

TEST_P(EverySchedule, RowsAndLogBlocksComeInBinOrder) {
  Captured log;
  RunContext ctx = make_context(RunSettings{GetParam(), 0, 2, 7}, log.target());
  const BinPlan plan = BinPlan::trials(97);
  const MapResult result = ctx.map("bins", plan, test_schema, simple_row);
  EXPECT_EQ(result.failed, 0);
  EXPECT_FALSE(result.interrupted);
  if (!is_root()) {
    EXPECT_EQ(result.table.size(), 0u);
    return;
  }
  ASSERT_EQ(result.table.size(), 97u);
  for (std::size_t i = 0; i < 97; ++i) {
    EXPECT_EQ(result.table.i64(i, "bin"), static_cast<std::int64_t>(i));
    EXPECT_EQ(result.table.f64(i, "twice"), 2.0 * static_cast<double>(i));
    // The stream of a bin is (seed, index) whichever rank ran it.
    EXPECT_EQ(result.table.f64(i, "draw"), RngStream(7, i).uniform());
    EXPECT_EQ(result.table.str(i, "status"), "ok");
  }
  EXPECT_EQ(log.text, expected_log(97));
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  ASSERT_EQ(result.stats.ranks.size(), static_cast<std::size_t>(size));
  std::int64_t bins = 0;
  for (const RankStats& r : result.stats.ranks) bins += r.bins;
  EXPECT_EQ(bins, 97);
  for (const BinStats& b : result.stats.bins) {
    EXPECT_GE(b.rank, 0);
    EXPECT_LT(b.rank, size);
    EXPECT_GE(b.wall, 0.0);
  }
}

// Two bins at once per rank (MapOptions::concurrent_bins, 2 threads, enough bins): the rows,
// the random streams, the ordered log and the per-bin stats are those of one at a time;
// every bin ran with one thread; a stop during the map leaves a resumable checkpoint.
TEST_P(EverySchedule, BinsAtOnceGiveTheResultsOfOneAtATime) {
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const auto bins = static_cast<std::int64_t>(300 * size);
  const BinPlan plan = BinPlan::trials(bins);
  Captured log;
  RunContext ctx = make_context(RunSettings{GetParam(), 0, 2, 7}, log.target(), nullptr, 2);
  std::atomic<int> running{0};
  std::atomic<int> most{0};
  const MapResult result = ctx.map(
      "bins", plan, test_schema,
      [&](BinContext& bin) {
        const int now = ++running;
        int seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        EXPECT_EQ(bin.budget().threads(), 1);
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        --running;
        return simple_row(bin);
      },
      {.concurrent_bins = true});
  EXPECT_EQ(most.load(), 2) << "two bins of a rank ran at once";
  EXPECT_FALSE(result.interrupted);
  if (!is_root()) return;
  ASSERT_EQ(result.table.size(), static_cast<std::size_t>(bins));
  for (std::size_t i = 0; i < result.table.size(); ++i) {
    EXPECT_EQ(result.table.f64(i, "twice"), 2.0 * static_cast<double>(i));
    EXPECT_EQ(result.table.f64(i, "draw"), RngStream(7, i).uniform());
  }
  EXPECT_EQ(log.text.substr(log.text.find("bin 0\n")), expected_log(bins));
  std::int64_t counted = 0;
  for (const RankStats& r : result.stats.ranks) counted += r.bins;
  EXPECT_EQ(counted, bins);
  for (const BinStats& b : result.stats.bins) EXPECT_EQ(b.threads, 1);
}

// A map stopped (as by a SIGTERM) while bin `stop_at` runs, on whichever rank runs it, then
// resumed from its checkpoint; and the same map straight through: what the stop-and-resume
// tests compare.
struct StopAndResume {
  MapResult clean, first, second;
  std::string clean_log, resumed_log;
};

StopAndResume stop_and_resume(Schedule schedule, const BinPlan& plan, std::int64_t stop_at,
                              int threads, MapOptions options) {
  const std::string path = "executor_test_resume.ckpt";
  const RunSettings settings{schedule, 0, 2, 3};
  StopAndResume out;
  {
    Captured log;
    RunContext ctx = make_context(settings, log.target());
    out.clean = ctx.map("bins", plan, test_schema, simple_row);
    out.clean_log = log.text;
  }
  {
    std::unique_ptr<Checkpoint> checkpoint;
    if (is_root()) checkpoint = std::make_unique<Checkpoint>(path, "key\n", false);
    Captured log;
    RunContext ctx = make_context(settings, log.target(), checkpoint.get(), threads);
    out.first = ctx.map(
        "bins", plan, test_schema,
        [stop_at](BinContext& bin) {
          // Slow enough for rank 0's service thread to pass the stop on before the end.
          std::this_thread::sleep_for(std::chrono::microseconds(500));
          if (bin.bin().index == stop_at) request_stop(true);
          return simple_row(bin);
        },
        options);
    request_stop(false);
  }
  {
    std::unique_ptr<Checkpoint> checkpoint;
    if (is_root()) checkpoint = std::make_unique<Checkpoint>(path, "key\n", true);
    Captured log;
    RunContext ctx = make_context(settings, log.target(), checkpoint.get(), threads);
    out.second = ctx.map("bins", plan, test_schema, simple_row, options);
    out.resumed_log = log.text;
  }
  if (is_root()) std::filesystem::remove(path);
  return out;
}

TEST_P(EverySchedule, BinsAtOnceStopAndResume) {
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const BinPlan plan = BinPlan::trials(300 * size);
  const StopAndResume r = stop_and_resume(GetParam(), plan, 100, 2, {.concurrent_bins = true});
  EXPECT_TRUE(r.first.interrupted);
  EXPECT_FALSE(r.second.interrupted);
  if (!is_root()) return;
  EXPECT_LT(r.first.table.size(), plan.size());
  ASSERT_EQ(r.second.table.size(), plan.size());
  for (std::size_t i = 0; i < plan.size(); ++i) {
    EXPECT_EQ(r.second.table.rows()[i], r.clean.table.rows()[i]) << "row " << i;
  }
}

TEST_P(EverySchedule, AFailingBinDoesNotStopTheOthers) {
  Captured log;
  RunContext ctx = make_context(RunSettings{GetParam(), 0, 2, 1}, log.target());
  const MapResult result = ctx.map("bins", BinPlan::trials(50), test_schema, [](BinContext& bin) {
    if (bin.bin().index % 10 == 3)
      throw std::runtime_error(fmt::format("bad bin {}", bin.bin().index));
    return simple_row(bin);
  });
  EXPECT_EQ(result.failed, 5);  // every rank agrees
  if (!is_root()) return;
  ASSERT_EQ(result.table.size(), 50u);
  for (std::size_t i = 0; i < 50; ++i) {
    if (i % 10 == 3) {
      EXPECT_EQ(result.table.str(i, "status"), "failed");
      EXPECT_EQ(result.table.str(i, "message"), fmt::format("bad bin {}", i));
      EXPECT_TRUE(std::isnan(result.table.f64(i, "twice")));
    } else {
      EXPECT_EQ(result.table.str(i, "status"), "ok");
    }
  }
  EXPECT_NE(log.text.find("  error: bin 13 failed: bad bin 13\n"), std::string::npos);
}

TEST_P(EverySchedule, MaxFailuresStopsTakingBins) {
  Captured log;
  RunContext ctx = make_context(RunSettings{GetParam(), 2, 2, 1}, log.target());
  const MapResult result =
      ctx.map("bins", BinPlan::trials(400), test_schema, [](BinContext& bin) -> Row {
        std::this_thread::sleep_for(std::chrono::microseconds(300));
        if (bin.bin().index >= 10) throw std::runtime_error("always fails");
        return simple_row(bin);
      });
  EXPECT_TRUE(result.stopped_early);
  EXPECT_GE(result.failed, 2);
  if (is_root()) {
    EXPECT_LT(result.table.size(), 400u);
  }
}

TEST_P(EverySchedule, StopThenResumeGivesTheUninterruptedResult) {
  const BinPlan plan = BinPlan::trials(60);
  const StopAndResume r = stop_and_resume(GetParam(), plan, 25, 1, {});
  const MapResult& first = r.first;
  const MapResult& second = r.second;
  const MapResult& clean = r.clean;
  EXPECT_TRUE(first.interrupted);
  EXPECT_FALSE(second.interrupted);
  if (!is_root()) return;
  EXPECT_LT(first.table.size(), 60u);
  ASSERT_EQ(second.table.size(), 60u);
  for (std::size_t i = 0; i < 60; ++i) {
    EXPECT_EQ(second.table.rows()[i], clean.table.rows()[i]) << "row " << i;
  }
  // Resumed bins replay their log blocks: the log reads like the uninterrupted one
  // (apart from the [run] line that says how many bins were resumed).
  const std::string marker = fmt::format("{}resumed", run_marker);
  const auto line = r.resumed_log.find(marker);
  ASSERT_NE(line, std::string::npos);
  std::string without = r.resumed_log;
  without.erase(line, without.find('\n', line) + 1 - line);
  EXPECT_TRUE(without == r.clean_log) << "resumed log differs from the clean one";
  std::size_t resumed = 0;
  for (const BinStats& b : second.stats.bins) resumed += b.resumed ? 1 : 0;
  EXPECT_EQ(resumed, first.table.size());
}

TEST_P(EverySchedule, BadInputInABinEndsTheRunOnEveryRank) {
  Captured log;
  RunContext ctx = make_context(RunSettings{GetParam(), 0, 2, 1}, log.target());
  // A UsageError from a bin means the input is wrong (a corrupt file, say): every rank
  // must end the map with the same AgreedError instead of writing a result.
  try {
    (void)ctx.map("bins", BinPlan::trials(40), test_schema, [](BinContext& bin) {
      if (bin.bin().index == 7)
        throw UsageError("obs.h5: /events/time is not sorted (row 8 < row 7)");
      return simple_row(bin);
    });
    ADD_FAILURE() << "the map returned";
  } catch (const AgreedError& e) {
    EXPECT_EQ(e.status(), exit_status::usage);
    EXPECT_STREQ(e.what(), "obs.h5: /events/time is not sorted (row 8 < row 7)");
  }
}

INSTANTIATE_TEST_SUITE_P(Schedules, EverySchedule,
                         testing::Values(Schedule::static_block, Schedule::cyclic,
                                         Schedule::dynamic),
                         [](const auto& param) { return std::string(schedule_name(param.param)); });

// A tool that records what a nested run sees.
class ProbeTool final : public Tool {
public:
  static constexpr ToolInfo info{"probe", "records its environment"};
  ProbeTool() : Tool(info) {}
  int bins = 3;

protected:
  void declare(ParameterSet& params) override { params.add("bins", bins, "bins"); }
  ToolOutput execute(RunContext& ctx) override {
    const Schema schema{{"omp_max", ColumnType::i64, "", ""},
                        {"omp_team", ColumnType::i64, "", ""},
                        {"ranks", ColumnType::i64, "", ""},
                        {"draw", ColumnType::f64, "", ""}};
    const int ranks = ctx.runtime().size();
    ctx.log().info("probe runs {} bins", bins);
    return ToolOutput::from(
        ctx.map("probe", BinPlan::trials(bins), schema, [ranks](BinContext& bin) {
          int team = 0;
#pragma omp parallel default(none) shared(team)
          {
#pragma omp single
            team = omp_get_num_threads();
          }
          bin.log().info("probe bin");
          return Row{std::int64_t{omp_get_max_threads()}, std::int64_t{team}, std::int64_t{ranks},
                     bin.rng().uniform()};
        }));
  }
};

TEST(Nested, RunsOnSelfWithOneThreadAndLogsIntoTheCallingBin) {
  Captured log;
  RunContext ctx = make_context(RunSettings{Schedule::dynamic, 0, 2, 11}, log.target());
  const Schema schema{{"omp_max", ColumnType::i64, "", ""},
                      {"omp_team", ColumnType::i64, "", ""},
                      {"ranks", ColumnType::i64, "", ""},
                      {"draw", ColumnType::f64, "", ""},
                      {"outer_threads_after", ColumnType::i64, "", ""}};
  const MapResult result = ctx.map("outer", BinPlan::trials(8), schema, [](BinContext& bin) {
    // The caller may have more threads; the nested run must still get exactly one.
    omp_set_num_threads(2);
    ProbeTool probe;
    const ToolOutput out = bin.invoke(probe, {"bins=2"});
    const Table& t = out.table;
    std::int64_t most = 0;
    for (std::size_t i = 0; i < t.size(); ++i) most = std::max(most, t.i64(i, "omp_team"));
    return Row{t.i64(0, "omp_max"), most, t.i64(0, "ranks"), t.f64(1, "draw"),
               std::int64_t{omp_get_max_threads()}};
  });
  ASSERT_EQ(result.failed, 0);
  if (!is_root()) return;
  for (std::size_t i = 0; i < result.table.size(); ++i) {
    EXPECT_EQ(result.table.i64(i, "omp_max"), 1);
    EXPECT_EQ(result.table.i64(i, "omp_team"), 1);
    EXPECT_EQ(result.table.i64(i, "ranks"), 1);
    EXPECT_EQ(result.table.i64(i, "outer_threads_after"), 2) << "budget scope did not restore";
    // The nested stream derives from the calling bin's stream only.
    const RngStream outer(11, i);
    EXPECT_EQ(result.table.f64(i, "draw"), RngStream(outer.derive_seed(0), 1).uniform());
  }
  EXPECT_NE(
      log.text.find("bin 5\n  probe runs 2 bins\n  bin 0\n    probe bin\n  bin 1\n    probe bin\n"),
      std::string::npos)
      << log.text;
}

TEST(Nested, AFailureInsideMarksOnlyTheCallingBin) {
  Captured log;
  RunContext ctx = make_context(RunSettings{Schedule::dynamic, 0, 2, 1}, log.target());
  const MapResult result = ctx.map("outer", BinPlan::trials(6), test_schema, [](BinContext& bin) {
    ProbeTool probe;
    // bins=-1 is not a valid trial count: the nested run throws a UsageError.
    if (bin.bin().index == 4) (void)bin.invoke(probe, {"bins=-1"});
    return simple_row(bin);
  });
  EXPECT_EQ(result.failed, 1);
  if (is_root()) {
    EXPECT_EQ(result.table.str(4, "status"), "failed");
  }
}

}  // namespace
}  // namespace binflow
