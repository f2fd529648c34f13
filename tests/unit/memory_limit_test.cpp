// binflow/memory_limit.hpp: sizes as users and Slurm write them, memory_limit=auto from the
// scheduler's memory per task, and a check that fails before an allocation that would not fit.
#include "binflow/memory_limit.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "binflow/error.hpp"
#include "binflow/thread_budget.hpp"

namespace {

using binflow::LaunchEnvironment;
using binflow::MemoryLimit;
using binflow::parse_memory_size;

constexpr std::int64_t MiB = 1024 * 1024;

TEST(MemoryLimit, ParsesDaskAndSlurmUnits) {
  const std::vector<std::pair<std::string, std::int64_t>> cases{
      {"4096", 4096},          {"2GB", 2'000'000'000},  {"1.5 GiB", 3 * 512 * MiB},
      {"800M", 800 * MiB},     {"800mb", 800'000'000},  {"10 kB", 10'000},
      {"3KiB", 3072},          {"1T", 1024 * 1024 * MiB}, {" 2G ", 2048 * MiB},
      {"0", 0},
  };
  for (const auto& [text, bytes] : cases) {
    EXPECT_EQ(parse_memory_size(text), std::optional<std::int64_t>(bytes)) << text;
  }
  for (const std::string bad : {"", "lots", "-1GB", "2 GBs", "1e30", "nan", "inf", "GB", "2GB3"}) {
    EXPECT_EQ(parse_memory_size(bad), std::nullopt) << bad;
  }
}

LaunchEnvironment environment(const std::map<std::string, std::string>& vars) {
  return LaunchEnvironment::from_lookup([&](const char* name) -> const char* {
    const auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}

TEST(MemoryLimit, AutoTakesTheSchedulersMemoryPerTask) {
  EXPECT_TRUE(MemoryLimit::resolve("auto", environment({}), 4).none());
  // --mem-per-cpu times the task's CPUs; --mem shared by the node's ranks.
  const MemoryLimit per_cpu = MemoryLimit::resolve(
      "auto", environment({{"SLURM_MEM_PER_CPU", "1000"}, {"SLURM_CPUS_PER_TASK", "4"}}), 2);
  EXPECT_EQ(per_cpu.bytes(), 4000 * MiB);
  EXPECT_NE(per_cpu.source().find("SLURM_MEM_PER_CPU"), std::string::npos);
  EXPECT_EQ(MemoryLimit::resolve("auto", environment({{"SLURM_MEM_PER_NODE", "8G"}}), 4).bytes(),
            2048 * MiB);
  // --mem=0 is the whole node: no bound of binflow's.
  EXPECT_TRUE(MemoryLimit::resolve("auto", environment({{"SLURM_MEM_PER_NODE", "0"}}), 4).none());
  // An explicit value or none wins over the scheduler's.
  const LaunchEnvironment slurm = environment({{"SLURM_MEM_PER_CPU", "1000"}});
  EXPECT_EQ(MemoryLimit::resolve("3GiB", slurm, 1).bytes(), 3072 * MiB);
  EXPECT_TRUE(MemoryLimit::resolve("none", slurm, 1).none());
}

TEST(MemoryLimit, BadValuesAreUsageErrorsNamingThem) {
  for (const std::string bad : {"lots", "0", "-2GB", ""}) {
    try {
      (void)MemoryLimit::resolve(bad, environment({}), 1);
      ADD_FAILURE() << bad << " accepted";
    } catch (const binflow::UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("memory_limit=" + bad), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(environment({{"SLURM_MEM_PER_CPU", "much"}}), binflow::UsageError);
}

TEST(MemoryLimit, CheckFailsBeforeAnAllocationThatWouldNotFit) {
  const std::int64_t held = binflow::resident_bytes();
  ASSERT_GT(held, 0);
  const MemoryLimit limit(held + 64 * MiB, "memory_limit=test");
  EXPECT_NO_THROW(limit.check(16.0 * MiB, [] { return "a small read"; }));
  try {
    limit.check(256.0 * MiB, [] { return "reading 8388608 events"; });
    ADD_FAILURE() << "256 MiB passed a limit 64 MiB above the resident set";
  } catch (const binflow::MemoryLimitExceeded& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("reading 8388608 events needs 268.4 MB more"), std::string::npos) << what;
    EXPECT_NE(what.find("memory_limit=test"), std::string::npos) << what;
  }
  EXPECT_NO_THROW(MemoryLimit().check(1e18, [] { return "anything"; }));  // no bound
}

}  // namespace
