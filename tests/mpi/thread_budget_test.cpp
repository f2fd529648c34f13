// Thread budget at 1-4 ranks: the threads of a node's ranks fit its cores, requests and
// launch variables above the share are capped with a warning, and the budget really
// limits the OpenMP regions opened afterwards, also from further threads.
#include "binflow/thread_budget.hpp"

#include <dlfcn.h>
#include <gtest/gtest.h>
#include <mpi.h>
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "binflow/error.hpp"
#include "binflow/runtime.hpp"

namespace {

using binflow::LaunchEnvironment;
using binflow::Runtime;
using binflow::ThreadBudget;
using binflow::ThreadBudgetScope;
using binflow::ThreadRequest;

Runtime world() { return Runtime::create(binflow::Communicator::borrow(MPI_COMM_WORLD)); }

/// The budget with no request and no launch variables: the rank's share of its cores.
ThreadBudget share(const Runtime& rt) { return ThreadBudget::negotiate(rt, {}, {}); }

testing::AssertionResult mentions(const std::vector<std::string>& lines, const std::string& word) {
  for (const std::string& line : lines) {
    if (line.find(word) != std::string::npos) return testing::AssertionSuccess();
  }
  testing::AssertionResult out = testing::AssertionFailure() << "no line mentions " << word;
  for (const std::string& line : lines) out << "\n  " << line;
  return out;
}

/// Threads a parallel region opened by the calling thread really runs.
int region_threads() {
  int seen = 0;
#pragma omp parallel default(none) shared(seen)
  {
#pragma omp single
    seen = omp_get_num_threads();
  }
  return seen;
}

/// Threads of a region nested inside a region of two threads.
int nested_region_threads() {
  int seen = 0;
#pragma omp parallel default(none) shared(seen) num_threads(2)
  {
#pragma omp single
    {
#pragma omp parallel default(none) shared(seen)
      {
#pragma omp single
        seen = omp_get_num_threads();
      }
    }
  }
  return seen;
}

/// What a fresh thread gets without any budget: the process-wide OpenMP default.
int fresh_thread_default() {
  int threads = 0;
  std::thread probe([&] { threads = omp_get_max_threads(); });
  probe.join();
  return threads;
}

/// A thread count that differs from every default, so that seeing it proves the cap.
int distinctive_threads() { return std::max(3, fresh_thread_default() + 1); }

/// Sets and restores the process environment the budget exports.
class ExportedEnvironment {
public:
  ExportedEnvironment() {
    for (const char* name : names_) {
      const char* value = std::getenv(name);
      if (value != nullptr) saved_[name] = value;
    }
  }
  ~ExportedEnvironment() {
    for (const char* name : names_) {
      const auto it = saved_.find(name);
      if (it == saved_.end()) {
        unsetenv(name);
      } else {
        setenv(name, it->second.c_str(), 1);
      }
    }
  }
  ExportedEnvironment(const ExportedEnvironment&) = delete;
  ExportedEnvironment& operator=(const ExportedEnvironment&) = delete;

private:
  static constexpr const char* names_[] = {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                           "MKL_NUM_THREADS", "BLIS_NUM_THREADS"};
  std::map<std::string, std::string> saved_;
};

TEST(ThreadBudget, NodeThreadsFitTheCoresUnlessRanksExceedThem) {
  const Runtime rt = world();
  const ThreadBudget budget = share(rt);
  EXPECT_GE(budget.threads(), 1);
  EXPECT_EQ(budget.threads(), budget.granted());
  EXPECT_LE(budget.threads(), budget.cpuset_cores());
  EXPECT_FALSE(budget.cpuset().empty());
  EXPECT_TRUE(budget.warnings().empty());

  const binflow::Placement placement = binflow::gather_placement(rt, budget);
  if (!rt.comm.is_root()) {
    EXPECT_TRUE(placement.ranks.empty());
    return;
  }
  ASSERT_EQ(static_cast<int>(placement.ranks.size()), rt.size());
  ASSERT_EQ(static_cast<int>(placement.nodes.size()), rt.node_count);
  bool any_oversubscribed = false;
  for (const binflow::NodePlacement& node : placement.nodes) {
    SCOPED_TRACE("node " + node.host);
    EXPECT_GE(node.cores_available, 1);
    if (node.ranks <= node.cores_available) {
      EXPECT_LE(node.threads, node.cores_available);
    }
    any_oversubscribed = any_oversubscribed || node.threads > node.cores_available;
  }
  EXPECT_EQ(!placement.oversubscription_warnings().empty(), any_oversubscribed);
}

TEST(ThreadBudget, IdenticalCpusetsShareAllTheirCores) {
  const Runtime rt = world();
  const binflow::Placement placement = binflow::gather_placement(rt, share(rt));
  if (!rt.comm.is_root() || placement.nodes.size() != 1) return;
  const std::string& first = placement.ranks.front().cpuset;
  const bool identical = std::all_of(placement.ranks.begin(), placement.ranks.end(),
                                     [&](const auto& rank) { return rank.cpuset == first; });
  const binflow::NodePlacement& node = placement.nodes.front();
  if (!identical) GTEST_SKIP() << "the ranks have different cpusets";
  if (node.ranks > node.cores_available) GTEST_SKIP() << "more ranks than cores";
  EXPECT_EQ(node.threads, node.cores_available);
}

TEST(ThreadBudget, PlacementDescribesEveryRank) {
  const Runtime rt = world();
  const ThreadBudget budget = share(rt);
  const binflow::Placement placement = binflow::gather_placement(rt, budget);
  if (!rt.comm.is_root()) return;
  for (int r = 0; r < rt.size(); ++r) {
    const binflow::RankPlacement& rank = placement.ranks[static_cast<std::size_t>(r)];
    EXPECT_EQ(rank.rank, r);
    EXPECT_GE(rank.local_rank, 0);
    EXPECT_FALSE(rank.host.empty());
    EXPECT_FALSE(rank.cpuset.empty());
    EXPECT_GE(rank.threads, 1);
    EXPECT_GE(rank.cpuset_cores, 1);
  }
  EXPECT_EQ(placement.ranks[0].host, rt.host);
  EXPECT_EQ(placement.ranks[0].cpuset, budget.cpuset());
  EXPECT_EQ(placement.ranks[0].threads, budget.threads());
  EXPECT_EQ(placement.ranks[0].cpuset_cores, budget.cpuset_cores());
}

TEST(ThreadBudget, NthreadsAboveTheShareIsCappedWithAWarning) {
  const Runtime rt = world();
  const int granted = share(rt).granted();
  const ThreadBudget budget = ThreadBudget::negotiate(rt, ThreadRequest{granted + 5, false}, {});
  EXPECT_EQ(budget.threads(), granted);
  EXPECT_TRUE(mentions(budget.warnings(), "nthreads=" + std::to_string(granted + 5)));

  const binflow::Placement placement = binflow::gather_placement(rt, budget);
  if (!rt.comm.is_root()) return;
  for (const auto& rank : placement.ranks) EXPECT_FALSE(rank.warnings.empty()) << rank.rank;
  EXPECT_TRUE(mentions(placement.rank_warnings(), "nthreads="));
}

TEST(ThreadBudget, NthreadsWithinTheShareIsHonouredSilently) {
  const Runtime rt = world();
  const ThreadBudget budget = ThreadBudget::negotiate(rt, ThreadRequest{1, false}, {});
  EXPECT_EQ(budget.threads(), 1);
  EXPECT_TRUE(budget.warnings().empty());
}

TEST(ThreadBudget, OversubscribeAllowsMoreThanTheShare) {
  const Runtime rt = world();
  const int granted = share(rt).granted();
  const ThreadBudget budget = ThreadBudget::negotiate(rt, ThreadRequest{granted + 5, true}, {});
  EXPECT_EQ(budget.threads(), granted + 5);
  EXPECT_EQ(budget.granted(), granted);
  EXPECT_TRUE(budget.warnings().empty());

  const binflow::Placement placement = binflow::gather_placement(rt, budget);
  if (rt.comm.is_root()) {
    EXPECT_FALSE(placement.oversubscription_warnings().empty());
  }
}

TEST(ThreadBudget, NegativeNthreadsIsAUsageError) {
  const Runtime rt = world();
  EXPECT_THROW(ThreadBudget::negotiate(rt, ThreadRequest{-1, false}, {}), binflow::UsageError);
}

TEST(ThreadBudget, ParallelRegionAfterApplyRunsTheBudget) {
  const Runtime rt = world();
  const ExportedEnvironment restore_environment;
  for (const ThreadBudget& budget :
       {share(rt), ThreadBudget::negotiate(rt, ThreadRequest{distinctive_threads(), true}, {})}) {
    SCOPED_TRACE(budget.threads());
    const ThreadBudgetScope restore(budget);
    budget.apply();
    EXPECT_EQ(omp_get_max_threads(), budget.threads());
    const int seen = region_threads();
    EXPECT_LE(seen, budget.threads());
    if (omp_get_dynamic() == 0) {
      EXPECT_EQ(seen, budget.threads());
    }
    EXPECT_EQ(nested_region_threads(), 1);
    EXPECT_EQ(std::string(std::getenv("OMP_NUM_THREADS")), std::to_string(budget.threads()));
    EXPECT_EQ(std::string(std::getenv("OPENBLAS_NUM_THREADS")), std::to_string(budget.threads()));
  }
}

TEST(ThreadBudget, NestedBudgetIsOneThreadAndTheScopeRestores) {
  EXPECT_EQ(ThreadBudget::nested().threads(), 1);
  EXPECT_EQ(ThreadBudget::nested(3).threads(), 3);
  EXPECT_THROW(ThreadBudget::nested(0), binflow::UsageError);

  const int outer = distinctive_threads();
  omp_set_num_threads(outer);
  {
    const ThreadBudgetScope scope(ThreadBudget::nested());
    EXPECT_EQ(omp_get_max_threads(), 1);
    EXPECT_EQ(region_threads(), 1);
  }
  EXPECT_EQ(omp_get_max_threads(), outer);
}

/// OpenBLAS's thread setters if the process has them (LD_PRELOAD, or the library is
/// installed), else null: binflow must find them without linking to any BLAS.
struct OpenBlas {
  void (*set)(int) = nullptr;
  int (*get)() = nullptr;
};
OpenBlas find_openblas() {
  if (dlsym(RTLD_DEFAULT, "openblas_get_num_threads") == nullptr) {
    for (const char* soname : {"libopenblas.so.0", "libopenblas.so"}) {
      if (dlopen(soname, RTLD_NOW | RTLD_GLOBAL) != nullptr) break;
    }
  }
  return {reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads")),
          reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"))};
}

TEST(ThreadBudget, LoadedBlasFollowsTheBudgetAndTheScope) {
  const OpenBlas blas = find_openblas();
  if (blas.set == nullptr || blas.get == nullptr) GTEST_SKIP() << "no OpenBLAS in the process";
  const ExportedEnvironment restore_environment;
  blas.set(5);
  ThreadBudget::nested(2).apply();
  EXPECT_EQ(blas.get(), 2);
  {
    const ThreadBudgetScope scope(ThreadBudget::nested());
    EXPECT_EQ(blas.get(), 1);
  }
  EXPECT_EQ(blas.get(), 2);
}

TEST(ThreadBudget, FurtherThreadGetsTheCapFromApplyToCurrentThread) {
  const Runtime rt = world();
  const ThreadBudget budget =
      ThreadBudget::negotiate(rt, ThreadRequest{distinctive_threads(), true}, {});
  int max_threads = 0;
  int seen = 0;
  std::thread worker([&] {
    budget.apply_to_current_thread();
    max_threads = omp_get_max_threads();
    seen = region_threads();
  });
  worker.join();
  EXPECT_EQ(max_threads, budget.threads());
  EXPECT_LE(seen, budget.threads());
  if (omp_get_dynamic() == 0) {
    EXPECT_EQ(seen, budget.threads());
  }

  const ThreadBudget one = ThreadBudget::nested();
  std::thread single([&] {
    one.apply_to_current_thread();
    seen = region_threads();
  });
  single.join();
  EXPECT_EQ(seen, 1);
}

TEST(ThreadBudget, LaunchEnvironmentLowersTheShare) {
  const Runtime rt = world();
  EXPECT_EQ(ThreadBudget::negotiate(rt, {}, LaunchEnvironment{.omp_num_threads = 1}).threads(), 1);
  EXPECT_EQ(ThreadBudget::negotiate(rt, {}, {.slurm_cpus_per_task = 1}).threads(), 1);
  EXPECT_EQ(ThreadBudget::negotiate(rt, {}, {.srun_cpus_per_task = 1}).threads(), 1);
  EXPECT_EQ(ThreadBudget::negotiate(rt, {}, {.pbs_ncpus = 1}).threads(), 1);

  const ThreadBudget lowered = ThreadBudget::negotiate(rt, {}, {.omp_num_threads = 1});
  EXPECT_EQ(lowered.granted(), 1);
  EXPECT_TRUE(lowered.warnings().empty());
}

TEST(ThreadBudget, LaunchEnvironmentNeverRaisesTheShare) {
  const Runtime rt = world();
  const int granted = share(rt).granted();
  const ThreadBudget omp =
      ThreadBudget::negotiate(rt, {}, LaunchEnvironment{.omp_num_threads = granted + 6});
  EXPECT_EQ(omp.threads(), granted);
  EXPECT_TRUE(mentions(omp.warnings(), "OMP_NUM_THREADS=" + std::to_string(granted + 6)));

  const ThreadBudget slurm = ThreadBudget::negotiate(
      rt, {}, LaunchEnvironment{.omp_num_threads = granted + 6, .slurm_cpus_per_task = 1});
  EXPECT_EQ(slurm.threads(), 1);
  EXPECT_TRUE(mentions(slurm.warnings(), "OMP_NUM_THREADS="));
  // The warning names what limits the rank: the variable, unless the cpuset already did.
  if (granted > 1) {
    EXPECT_TRUE(mentions(slurm.warnings(), "SLURM_CPUS_PER_TASK=1"));
  }

  const ThreadBudget request = ThreadBudget::negotiate(rt, ThreadRequest{2, false},
                                                       LaunchEnvironment{.srun_cpus_per_task = 1});
  EXPECT_EQ(request.threads(), 1);
  EXPECT_TRUE(mentions(request.warnings(), "nthreads=2"));
  if (granted > 1) {
    EXPECT_TRUE(mentions(request.warnings(), "SRUN_CPUS_PER_TASK=1"));
  }
}

TEST(LaunchEnvironment, ParsesTheSchedulerVariables) {
  const std::map<std::string, std::string> vars = {{"OMP_NUM_THREADS", " 4,2 "},
                                                   {"SLURM_CPUS_PER_TASK", "3"},
                                                   {"SRUN_CPUS_PER_TASK", ""},
                                                   {"NCPUS", "5"}};
  auto lookup = [&](const char* name) -> const char* {
    const auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
  const LaunchEnvironment env = LaunchEnvironment::from_lookup(lookup);
  EXPECT_EQ(env.omp_num_threads, 4);
  EXPECT_EQ(env.slurm_cpus_per_task, 3);
  EXPECT_FALSE(env.srun_cpus_per_task.has_value());
  EXPECT_FALSE(env.pbs_ncpus.has_value()) << "NCPUS outside a PBS job must be ignored";

  auto in_pbs = [&](const char* name) -> const char* {
    return std::string(name) == "PBS_JOBID" ? "17.server" : lookup(name);
  };
  EXPECT_EQ(LaunchEnvironment::from_lookup(in_pbs).pbs_ncpus, 5);
}

TEST(LaunchEnvironment, MalformedValuesNameTheVariable) {
  const std::vector<std::pair<std::string, std::string>> malformed = {
      {"OMP_NUM_THREADS", "abc"},
      {"OMP_NUM_THREADS", "0"},
      {"SLURM_CPUS_PER_TASK", "4,2"},
      {"SRUN_CPUS_PER_TASK", "-1"},
  };
  for (const auto& variable : malformed) {
    SCOPED_TRACE(variable.first + "=" + variable.second);
    auto lookup = [&](const char* asked) -> const char* {
      return variable.first == asked ? variable.second.c_str() : nullptr;
    };
    try {
      (void)LaunchEnvironment::from_lookup(lookup);
      ADD_FAILURE() << "no UsageError";
    } catch (const binflow::UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(variable.first), std::string::npos) << e.what();
    }
  }
  auto trailing = [](const char* asked) -> const char* {
    return std::string(asked) == "OMP_NUM_THREADS" ? "4,x" : nullptr;
  };
  EXPECT_THROW((void)LaunchEnvironment::from_lookup(trailing), binflow::UsageError);
}

TEST(Placement, OversubscribedNodesGetOneLineEach) {
  binflow::Placement placement;
  placement.nodes = {{"a", 4, 4, 2}, {"b", 2, 2, 2}, {"c", 1, 3, 2}};
  const auto lines = placement.oversubscription_warnings();
  ASSERT_EQ(lines.size(), 2U);
  EXPECT_EQ(lines[0].rfind("node a: 4 ranks", 0), 0U) << lines[0];
  EXPECT_NE(lines[0].find("4 threads on 2 cores (oversubscribed"), std::string::npos) << lines[0];
  EXPECT_EQ(lines[1].rfind("node c: 1 rank x", 0), 0U) << lines[1];
}

TEST(Placement, RankWarningsAreGroupedByText) {
  binflow::Placement placement;
  for (int r = 0; r < 4; ++r) {
    binflow::RankPlacement rank;
    rank.rank = r;
    rank.warnings = {r == 2 ? "other" : "same"};
    placement.ranks.push_back(rank);
  }
  const std::vector<std::string> expected = {"ranks 0-1,3: same", "rank 2: other"};
  EXPECT_EQ(placement.rank_warnings(), expected);
}

}  // namespace
