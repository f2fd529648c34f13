// Ordered logging: blocks come out in position order whatever order they arrive in, bin
// blocks have the documented shape at each chatter level, a large block survives the
// spill to a temporary file, and the run sink and target logger deliver every line.
#include "binflow/ordered_log.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "binflow/error.hpp"

namespace {

namespace fs = std::filesystem;
using binflow::BinLog;
using binflow::InternalError;
using binflow::OrderedLog;
using binflow::run_marker;

// Every call the OrderedLog makes to its target, one string per call.
struct Recorder {
  std::vector<std::string> calls;
  binflow::LogTarget target() {
    return [this](std::string_view text) { calls.emplace_back(text); };
  }
};

std::string block(std::size_t position) {
  return fmt::format("bin {}\n  line a of {}\n  line b of {}\n", position, position, position);
}

std::vector<std::string> blocks_in_order(std::size_t n) {
  std::vector<std::string> out;
  for (std::size_t p = 0; p < n; ++p) out.push_back(block(p));
  return out;
}

// Submits the blocks in `order` and checks after every submission that exactly the
// contiguous prefix of submitted positions has been written, in order: blocks are
// neither held longer than needed nor written early.
void check_order(const std::vector<std::size_t>& order) {
  Recorder rec;
  OrderedLog log(rec.target());
  std::vector<bool> seen(order.size(), false);
  std::size_t prefix = 0;
  for (const std::size_t position : order) {
    log.submit(position, block(position));
    seen[position] = true;
    while (prefix < seen.size() && seen[prefix]) ++prefix;
    ASSERT_EQ(log.written(), prefix) << "after submitting " << position;
    ASSERT_EQ(rec.calls.size(), prefix) << "after submitting " << position;
  }
  EXPECT_EQ(rec.calls, blocks_in_order(order.size()));
}

TEST(OrderedLog, InOrderArrivalWritesEachBlockAtOnce) {
  std::vector<std::size_t> order(20);
  std::iota(order.begin(), order.end(), 0);
  check_order(order);
}

TEST(OrderedLog, RandomPermutationsComeOutInPositionOrder) {
  std::mt19937 gen(20240607);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<std::size_t> order(1 + static_cast<std::size_t>(trial % 97));
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), gen);
    SCOPED_TRACE(fmt::format("trial {} with {} blocks", trial, order.size()));
    check_order(order);
    if (testing::Test::HasFatalFailure()) return;
  }
}

TEST(OrderedLog, ReverseOrderHoldsEverythingUntilTheFirstBlock) {
  constexpr std::size_t n = 500;
  std::vector<std::size_t> order(n);
  std::iota(order.rbegin(), order.rend(), 0);
  check_order(order);
}

TEST(OrderedLog, SkippedPositionsWriteNothing) {
  Recorder rec;
  OrderedLog log(rec.target());
  // Reverse order with every third position skipped, position 0 among them.
  for (std::size_t p = 30; p-- > 0;) {
    if (p % 3 == 0) {
      log.skip(p);
    } else {
      log.submit(p, block(p));
    }
  }
  EXPECT_EQ(log.written(), 30U);
  std::vector<std::string> expected;
  for (std::size_t p = 0; p < 30; ++p) {
    if (p % 3 != 0) expected.push_back(block(p));
  }
  EXPECT_EQ(rec.calls, expected);  // no empty calls for the skipped positions
}

TEST(OrderedLog, FlushRemainingWritesHeldBlocksPastGapsInOrder) {
  Recorder rec;
  OrderedLog log(rec.target());
  log.submit(5, block(5));
  log.submit(1, block(1));
  log.submit(0, block(0));
  log.skip(4);
  log.submit(3, block(3));
  // Position 2 never arrives (an interrupted run).
  EXPECT_EQ(log.written(), 2U);
  EXPECT_EQ(rec.calls, (std::vector<std::string>{block(0), block(1)}));

  log.flush_remaining();
  EXPECT_EQ(rec.calls, (std::vector<std::string>{block(0), block(1), block(3), block(5)}));
  EXPECT_EQ(log.written(), 6U);

  log.flush_remaining();  // nothing left: writes nothing more
  EXPECT_EQ(rec.calls.size(), 4U);
  // The gap is closed: a late block for it is a second submission, a new one goes straight out.
  EXPECT_THROW(log.submit(2, block(2)), InternalError);
  log.submit(6, block(6));
  EXPECT_EQ(rec.calls.back(), block(6));
}

TEST(OrderedLog, SubmittingAWrittenPositionAgainThrows) {
  Recorder rec;
  OrderedLog log(rec.target());
  log.submit(0, block(0));
  log.skip(1);
  EXPECT_THROW(log.submit(0, block(0)), InternalError);
  EXPECT_THROW(log.skip(1), InternalError);
  EXPECT_EQ(rec.calls, (std::vector<std::string>{block(0)}));
}

// A second block for a position still held (a lower position missing) is a bug in the
// caller, not a replacement.
TEST(OrderedLog, SubmittingAHeldPositionAgainThrows) {
  Recorder rec;
  OrderedLog log(rec.target());
  log.submit(3, "first\n");
  EXPECT_THROW(log.submit(3, "second\n"), InternalError);
}

// ---- BinLog ----

TEST(BinLog, HeaderUnindentedLinesIndentedWithLevelWords) {
  BinLog log(2);
  log.begin("bin 7 [10, 20) s");
  log.logger().info("fitted {} parameters", 3);
  log.logger().warn("fit did not converge");
  log.logger().error("no events");
  log.logger().critical("out of memory");
  EXPECT_EQ(log.take(),
            "bin 7 [10, 20) s\n"
            "  fitted 3 parameters\n"
            "  warning: fit did not converge\n"
            "  error: no events\n"
            "  error: out of memory\n");
}

TEST(BinLog, RunMarkerStaysFirstOnTheLine) {
  BinLog log(3);
  log.begin("bin 0");
  log.logger().warn("{}slow bin: {} s", run_marker, 12.5);
  log.logger().error("{}rank 3 lost", run_marker);
  log.logger().info("{}took 1 s on rank 2", run_marker);
  log.logger().info("not a [run] marker in the middle");
  EXPECT_EQ(log.take(),
            "bin 0\n"
            "  [run] warning: slow bin: 12.5 s\n"
            "  [run] error: rank 3 lost\n"
            "  [run] took 1 s on rank 2\n"
            "  not a [run] marker in the middle\n");
}

// The block of one bin with a line at every level, at a given chatter.
std::string block_at_chatter(int chatter) {
  BinLog log(chatter);
  log.begin("header");
  log.logger().trace("t");
  log.logger().debug("d");
  log.logger().info("i");
  log.logger().warn("w");
  log.logger().error("e");
  return log.take();
}

TEST(BinLog, ChatterSelectsLines) {
  EXPECT_EQ(block_at_chatter(0), "");  // header included
  EXPECT_EQ(block_at_chatter(1), "  warning: w\n  error: e\n");
  EXPECT_EQ(block_at_chatter(2), "header\n  i\n  warning: w\n  error: e\n");
  EXPECT_EQ(block_at_chatter(3), "header\n  d\n  i\n  warning: w\n  error: e\n");
  EXPECT_EQ(block_at_chatter(4), "header\n  t\n  d\n  i\n  warning: w\n  error: e\n");
}

TEST(BinLog, TakeEndsTheBlockAndBeginStartsClean) {
  BinLog log(2);
  log.begin("bin 0");
  log.logger().info("zero");
  EXPECT_EQ(log.take(), "bin 0\n  zero\n");
  EXPECT_EQ(log.take(), "");  // taken once

  log.begin("bin 1");
  log.logger().info("one");
  EXPECT_EQ(log.take(), "bin 1\n  one\n");

  // A block that is begun but never taken does not leak into the next one.
  log.begin("bin 2");
  log.logger().info("two");
  log.begin("bin 3");
  log.logger().info("three");
  EXPECT_EQ(log.take(), "bin 3\n  three\n");
}

// Open file descriptors of this process that point at deleted files: std::tmpfile's.
int deleted_files_open() {
  int count = 0;
  for (const auto& entry : fs::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    const fs::path target = fs::read_symlink(entry.path(), ec);
    if (!ec && target.string().find("(deleted)") != std::string::npos) ++count;
  }
  return count;
}

std::string big_block(BinLog& log, const std::string& header, int lines) {
  log.begin(header);
  std::string expected = header + "\n";
  for (int i = 0; i < lines; ++i) {
    log.logger().info("{} line {:05d} with some padding text", header, i);
    expected += fmt::format("  {} line {:05d} with some padding text\n", header, i);
  }
  return expected;
}

TEST(BinLog, LargeBlockSpillsToATemporaryFileAndComesBackComplete) {
  const bool have_proc = fs::exists("/proc/self/fd");
  const int deleted_before = have_proc ? deleted_files_open() : 0;
  BinLog log(2, 1024);

  const std::string expected = big_block(log, "bin A", 10'000);
  ASSERT_GT(expected.size(), 100U * 1024);
  // The text went to a temporary file, not the heap.
  if (have_proc) {
    EXPECT_EQ(deleted_files_open(), deleted_before + 1);
  }
  const std::string text = log.take();
  EXPECT_EQ(text.size(), expected.size());
  EXPECT_TRUE(text == expected) << "spilled block differs from what was logged";
  if (have_proc) {
    EXPECT_EQ(deleted_files_open(), deleted_before);  // temp file closed
  }

  // The next block (small, then large again) starts clean.
  log.begin("bin B");
  log.logger().info("small");
  EXPECT_EQ(log.take(), "bin B\n  small\n");
  const std::string again = big_block(log, "bin C", 3'000);
  EXPECT_TRUE(log.take() == again);

  // A spilled block that is begun over without take() is discarded.
  (void)big_block(log, "bin D", 3'000);
  log.begin("bin E");
  log.logger().info("after");
  EXPECT_EQ(log.take(), "bin E\n  after\n");
  if (have_proc) {
    EXPECT_EQ(deleted_files_open(), deleted_before);
  }
}

TEST(BinLog, ConcurrentLoggingKeepsEveryLineWhole) {
  constexpr int threads = 4;
  constexpr int lines = 2'000;
  BinLog log(2, 4096);
  log.begin("bin 0");
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&log, t] {
      for (int i = 0; i < lines; ++i) log.logger().info("thread {} line {}", t, i);
    });
  }
  for (auto& th : pool) th.join();
  std::istringstream in(log.take());
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  EXPECT_EQ(line, "bin 0");
  std::vector<int> next(threads, 0);  // each thread's lines in its own order
  int total = 0;
  while (std::getline(in, line)) {
    int t = -1;
    int i = -1;
    ASSERT_EQ(std::sscanf(line.c_str(), "  thread %d line %d", &t, &i), 2) << line;
    ASSERT_TRUE(t >= 0 && t < threads) << line;
    EXPECT_EQ(i, next[static_cast<std::size_t>(t)]) << line;
    next[static_cast<std::size_t>(t)] = i + 1;
    ++total;
  }
  EXPECT_EQ(total, threads * lines);
}

// ---- RunLogSink and target logger ----

class RunLogSinkTest : public testing::Test {
protected:
  void SetUp() override {
    dir_ = fs::path(testing::TempDir()) /
           fmt::format("binflow_ordered_log_test_{}_{}", ::getpid(),
                       testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  static std::string slurp(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }
  fs::path dir_;
};

TEST_F(RunLogSinkTest, WritesEveryBlockToTheFileTruncatingOldContent) {
  const fs::path file = dir_ / "run.log";
  std::ofstream(file) << "stale content of an earlier run\n";
  std::string expected;
  {
    binflow::RunLogSink sink(file.string(), false);
    sink.open_file();
    for (int i = 0; i < 100; ++i) {
      const std::string text = block(static_cast<std::size_t>(i));
      sink.write(text);
      expected += text;
    }
  }
  EXPECT_EQ(slurp(file), expected);
}

TEST_F(RunLogSinkTest, FlushMakesTextVisibleBeforeDestruction) {
  const fs::path file = dir_ / "run.log";
  binflow::RunLogSink sink(file.string(), false);
  sink.open_file();
  sink.write("first\n");
  sink.flush();
  EXPECT_EQ(slurp(file), "first\n");
}

TEST_F(RunLogSinkTest, LeavesAnExistingFileAloneUntilOpenedThenWritesWhatItHeld) {
  const fs::path file = dir_ / "run.log";
  std::ofstream(file) << "log of an earlier run\n";
  {
    binflow::RunLogSink sink(file.string(), false);
    sink.write("before the inputs were checked\n");
    sink.flush();
    EXPECT_EQ(slurp(file), "log of an earlier run\n");
    sink.open_file();
    sink.write("after\n");
  }
  EXPECT_EQ(slurp(file), "before the inputs were checked\nafter\n");
}

TEST_F(RunLogSinkTest, NeverOpenedLeavesTheFileAsItWas) {
  const fs::path file = dir_ / "run.log";
  std::ofstream(file) << "log of an earlier run\n";
  {
    binflow::RunLogSink sink(file.string(), false);
    sink.write("a run refused on bad input\n");
  }
  EXPECT_EQ(slurp(file), "log of an earlier run\n");
}

TEST_F(RunLogSinkTest, ConsoleReceivesTheSameText) {
  const fs::path file = dir_ / "run.log";
  testing::internal::CaptureStdout();
  {
    binflow::RunLogSink sink(file.string(), true);
    sink.write("to both\n");
    sink.open_file();
  }
  EXPECT_EQ(testing::internal::GetCapturedStdout(), "to both\n");
  EXPECT_EQ(slurp(file), "to both\n");
}

TEST_F(RunLogSinkTest, UnopenableFileIsAnIoErrorNamingIt) {
  const std::string bad = (dir_ / "no_such_dir" / "run.log").string();
  try {
    binflow::RunLogSink sink(bad, false);
    sink.open_file();
    FAIL() << "no IoError";
  } catch (const binflow::IoError& e) {
    EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
  }
}

TEST(TargetLogger, ForwardsEachLineUnindentedWithLevelWords) {
  std::vector<std::string> lines;
  auto logger = binflow::make_target_logger(
      "tool", [&lines](std::string_view text) { lines.emplace_back(text); }, 2);
  logger->info("reading {}", "events.h5");
  logger->debug("hidden at chatter 2");
  logger->warn("few events");
  logger->error("{}rank {} failed", run_marker, 1);
  EXPECT_EQ(lines, (std::vector<std::string>{"reading events.h5\n", "warning: few events\n",
                                             "[run] error: rank 1 failed\n"}));
}

TEST(TargetLogger, ChatterZeroForwardsNothing) {
  int calls = 0;
  auto logger = binflow::make_target_logger(
      "quiet", [&calls](std::string_view) { ++calls; }, 0);
  logger->info("i");
  logger->warn("w");
  logger->error("e");
  EXPECT_EQ(calls, 0);
}

}  // namespace
