// binflow/parallel.hpp: exceptions never escape a region and the lowest failing index wins
// for every thread count, the team is the thread count given (not the OpenMP ICV), and an
// ordered block sum is the same bits for any thread count where a per-thread sum is not.
#include "binflow/parallel.hpp"

#include <omp.h>

#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "binflow/error.hpp"

namespace {

using binflow::LoopSchedule;
using binflow::ordered_block_reduce;
using binflow::ordered_block_sum;
using binflow::parallel_for;

constexpr std::array<LoopSchedule, 2> schedules = {LoopSchedule::contiguous, LoopSchedule::dynamic};

// Sets the calling thread's OpenMP thread count for one test and restores it after.
class IcvScope {
public:
  explicit IcvScope(int threads) : saved_(omp_get_max_threads()) { omp_set_num_threads(threads); }
  IcvScope(const IcvScope&) = delete;
  IcvScope& operator=(const IcvScope&) = delete;
  ~IcvScope() { omp_set_num_threads(saved_); }

private:
  int saved_;
};

// A block of 1000 terms spanning 40 orders of magnitude with alternating signs: adding its
// block sums in another grouping changes the last bits.
double block_value(std::int64_t b) {
  double sum = 0.0;
  for (int j = 0; j < 1000; ++j) {
    const double x =
        std::sin(static_cast<double>(b * 1000 + j)) * std::pow(10.0, (j * 37) % 40 - 20);
    sum += (j % 2 == 0) ? x : -0.999 * x;
  }
  return sum;
}

TEST(ParallelFor, RunsEveryIterationOnce) {
  for (const LoopSchedule schedule : schedules) {
    for (const int threads : {1, 2, 3, 4}) {
      std::vector<int> hits(1000, 0);
      parallel_for(
          threads, 1000, [&](std::int64_t i) { ++hits[static_cast<std::size_t>(i)]; }, schedule);
      for (std::size_t i = 0; i < hits.size(); ++i) ASSERT_EQ(hits[i], 1) << threads << " " << i;
    }
  }
  parallel_for(4, 0, [](std::int64_t) { FAIL() << "no iteration for n = 0"; });
  parallel_for(4, -3, [](std::int64_t) { FAIL() << "no iteration for n < 0"; });
}

TEST(ParallelFor, TeamIsTheThreadCountGivenNotTheOpenMpSetting) {
  for (const int icv : {1, 8}) {
    const IcvScope scope(icv);  // parallel_for must not read it
    for (const int threads : {2, 3, 4}) {
      std::atomic<int> team{0};
      std::mutex mutex;
      std::set<int> ids;
      parallel_for(threads, 64, [&](std::int64_t) {
        team = omp_get_num_threads();
        const std::lock_guard<std::mutex> lock(mutex);
        ids.insert(omp_get_thread_num());
      });
      EXPECT_EQ(team.load(), threads) << "ICV " << icv;
      EXPECT_LE(ids.size(), static_cast<std::size_t>(threads));
      EXPECT_LT(*ids.rbegin(), threads);
    }
  }
}

TEST(ParallelFor, OneThreadRunsInTheCallerInOrder) {
  const IcvScope scope(4);
  const std::thread::id caller = std::this_thread::get_id();
  std::vector<std::int64_t> order;
  parallel_for(1, 100, [&](std::int64_t i) {
    EXPECT_EQ(std::this_thread::get_id(), caller);
    EXPECT_FALSE(omp_in_parallel());
    order.push_back(i);
  });
  ASSERT_EQ(order.size(), 100U);
  for (std::size_t i = 0; i < order.size(); ++i) EXPECT_EQ(order[i], static_cast<std::int64_t>(i));
}

TEST(ParallelFor, ExceptionIsRethrownAfterEveryThreadHasStopped) {
  for (const LoopSchedule schedule : schedules) {
    for (const int threads : {1, 2, 3, 4}) {
      std::atomic<int> running{0};
      std::atomic<int> ran{0};
      try {
        parallel_for(
            threads, 400,
            [&](std::int64_t i) {
              ++running;
              ++ran;
              std::this_thread::sleep_for(std::chrono::microseconds(200));
              --running;
              if (i == 150) throw std::runtime_error("iteration 150");
            },
            schedule);
        ADD_FAILURE() << "no exception with " << threads << " threads";
      } catch (const std::runtime_error& e) {
        EXPECT_EQ(running.load(), 0) << "an iteration still runs after the rethrow";
        EXPECT_EQ(std::string(e.what()), "iteration 150");
        EXPECT_GE(ran.load(), 151);  // every index below the failure ran
      }
    }
  }
}

TEST(ParallelFor, LowestFailingIndexWinsForEveryThreadCount) {
  // Indices 30, 250 and 390 throw different types; a serial loop stops at 30.
  const auto body = [](std::int64_t i) {
    if (i == 390) throw 390;
    if (i == 250) throw binflow::UsageError("index 250");
    if (i == 30) throw std::logic_error("index 30");
  };
  for (const LoopSchedule schedule : schedules) {
    for (const int threads : {1, 2, 3, 4}) {
      EXPECT_THROW(
          {
            try {
              parallel_for(threads, 400, body, schedule);
            } catch (const std::logic_error& e) {
              EXPECT_STREQ(e.what(), "index 30");
              throw;
            }
          },
          std::logic_error)
          << threads << " threads";
    }
  }
}

TEST(ParallelFor, NoExceptionEscapesARegion) {
  // Every iteration throws, also values that are no std::exception: one escaping a region
  // would end this test program in std::terminate.
  for (const LoopSchedule schedule : schedules) {
    for (const int threads : {2, 3, 4}) {
      bool caught = false;
      try {
        parallel_for(
            threads, 1000, [](std::int64_t i) { throw static_cast<int>(i); }, schedule);
      } catch (int i) {
        caught = true;
        EXPECT_EQ(i, 0);
      }
      EXPECT_TRUE(caught);
    }
  }
}

TEST(ParallelFor, ThreadCountBelowOneIsAnInternalError) {
  EXPECT_THROW(parallel_for(0, 10, [](std::int64_t) {}), binflow::InternalError);
  EXPECT_THROW(parallel_for(-1, 0, [](std::int64_t) {}), binflow::InternalError);
  EXPECT_THROW((void)ordered_block_sum(0, 10, [](std::int64_t) { return 1.0; }),
               binflow::InternalError);
}

TEST(OrderedBlockSum, SameBitsForAnyThreadCount) {
  constexpr std::int64_t blocks = 97;
  const double serial = ordered_block_sum(1, blocks, block_value);
  // The control: the same block sums added per thread of a four-thread static schedule
  // (what a `reduction(+)` does) differ, so the comparison below can fail.
  std::array<double, 4> per_thread{};
  for (std::int64_t b = 0; b < blocks; ++b) {
    per_thread[static_cast<std::size_t>(b * 4 / blocks)] += block_value(b);
  }
  const double grouped = ((per_thread[0] + per_thread[1]) + per_thread[2]) + per_thread[3];
  ASSERT_NE(std::bit_cast<std::uint64_t>(grouped), std::bit_cast<std::uint64_t>(serial));
  for (const int threads : {1, 2, 3, 4}) {
    const double sum = ordered_block_sum(threads, blocks, block_value);
    EXPECT_EQ(std::bit_cast<std::uint64_t>(sum), std::bit_cast<std::uint64_t>(serial))
        << threads << " threads: " << sum << " vs " << serial;
  }
}

TEST(OrderedBlockReduce, CombinesInBlockOrderOnTheCallingThread) {
  for (const int threads : {1, 2, 3, 4}) {
    const std::thread::id caller = std::this_thread::get_id();
    std::vector<std::int64_t> order;
    const std::array<double, 2> total = ordered_block_reduce(
        threads, 50,
        [](std::int64_t b) {
          return std::array<double, 2>{static_cast<double>(b), block_value(b)};
        },
        [&](std::array<double, 2>& sum, const std::array<double, 2>& part) {
          EXPECT_EQ(std::this_thread::get_id(), caller);
          order.push_back(static_cast<std::int64_t>(part[0]));
          sum[0] += part[0];
          sum[1] += part[1];
        });
    ASSERT_EQ(order.size(), 50U);
    for (std::size_t b = 0; b < order.size(); ++b)
      EXPECT_EQ(order[b], static_cast<std::int64_t>(b));
    EXPECT_EQ(total[0], 49.0 * 50.0 / 2.0);
    EXPECT_EQ(std::bit_cast<std::uint64_t>(total[1]),
              std::bit_cast<std::uint64_t>(ordered_block_sum(1, 50, block_value)));
  }
}

TEST(OrderedBlockSum, ExceptionOfABlockIsRethrown) {
  for (const int threads : {1, 3}) {
    EXPECT_THROW((void)ordered_block_sum(threads, 20,
                                         [](std::int64_t b) {
                                           if (b == 7) throw binflow::IoError("block 7");
                                           return 1.0;
                                         }),
                 binflow::IoError);
  }
}

TEST(Parallel, ThreadsWithTheirOwnBudgetsCallAtTheSameTime) {
  // Two caller threads (say rank 0's compute thread and a nested run elsewhere), each with
  // its own budget: each gets its own team of that size and the same sum as alone.
  const double expected = ordered_block_sum(1, 60, block_value);
  std::array<int, 2> teams{};
  std::array<double, 2> sums{};
  std::vector<std::thread> callers;
  for (std::size_t k = 0; k < 2; ++k) {
    callers.emplace_back([&, k] {
      const int threads = static_cast<int>(k) + 2;
      std::atomic<int> team{0};
      for (int repeat = 0; repeat < 20; ++repeat) {
        parallel_for(threads, 16, [&](std::int64_t) { team = omp_get_num_threads(); });
        sums[k] = ordered_block_sum(threads, 60, block_value);
      }
      teams[k] = team.load();
    });
  }
  for (std::thread& t : callers) t.join();
  EXPECT_EQ(teams[0], 2);
  EXPECT_EQ(teams[1], 3);
  for (const double s : sums) {
    EXPECT_EQ(std::bit_cast<std::uint64_t>(s), std::bit_cast<std::uint64_t>(expected));
  }
}

}  // namespace
