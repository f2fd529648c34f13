#pragma once
// How many compute threads a rank may run, negotiated once per run so that the
// threads of all ranks on a node never exceed its cores, and applied to every
// threading runtime in the process (OpenMP, Eigen, any loaded BLAS, child programs).
#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "binflow/runtime.hpp"

namespace binflow {

/// The scheduler's settings of the launch, read once at start-up (the only place binflow
/// reads the environment for threads and memory). Each thread setting can only lower the
/// cores a rank is granted, never raise them (see ThreadBudget::negotiate); the memory
/// ones give memory_limit=auto its value (see MemoryLimit::resolve).
struct LaunchEnvironment {
  std::optional<int> omp_num_threads{};      ///< OMP_NUM_THREADS (PBS sets it from ompthreads)
  std::optional<int> slurm_cpus_per_task{};  ///< SLURM_CPUS_PER_TASK
  std::optional<int> srun_cpus_per_task{};   ///< SRUN_CPUS_PER_TASK
  std::optional<int> pbs_ncpus{};            ///< NCPUS (PBS Pro, per chunk)
  std::optional<std::int64_t> slurm_mem_per_cpu{};   ///< SLURM_MEM_PER_CPU, bytes
  std::optional<std::int64_t> slurm_mem_per_node{};  ///< SLURM_MEM_PER_NODE, bytes

  /// from_lookup over the process environment. Not thread-safe (getenv).
  static LaunchEnvironment from_environ();
  /// The same from any lookup (returns null for an unset name), for tests. Empty values
  /// count as unset; NCPUS is read only inside a PBS job (PBS_JOBID set), since the name
  /// is too generic to trust elsewhere. An OMP_NUM_THREADS list ("4,2", one value per
  /// nesting level) gives its first element. UsageError naming the variable for a value
  /// that is not a positive integer (or a list of them). The SLURM_MEM_* values are MiB
  /// (Slurm's unit) or a size with its unit; 0 (the whole node) counts as unset.
  static LaunchEnvironment from_lookup(const std::function<const char*(const char*)>& lookup);
};

/// What the user asked for (`nthreads`, `--oversubscribe`).
struct ThreadRequest {
  int nthreads = 0;            ///< 0 = all cores granted to this rank
  bool oversubscribe = false;  ///< allow more threads than the granted share
};

/// The negotiated budget of one rank plus what it was derived from (for `binflow info`).
class ThreadBudget {
public:
  /// Collective over rt.node: reads this process's cpuset with hwloc, counts the
  /// node-local ranks whose cpusets overlap it, divides the cores among them, caps by
  /// the launch environment, then honours `request`. Never returns less than 1.
  ///
  /// Cores are physical cores touching the cpuset (PUs when the topology has none), so
  /// hyperthreads never count twice. Ranks overlap when their cpusets share a core. The
  /// c cores are split among the n overlapping ranks as c / n each, and the first
  /// c % n of them in node-rank order get one more, so identical cpusets sum to c.
  /// An environment value or `request.nthreads` above the grant gets the grant and a
  /// warning; `request.oversubscribe` lets `nthreads` exceed it. UsageError for
  /// nthreads < 0; IoError when hwloc or MPI fail.
  static ThreadBudget negotiate(const Runtime& rt, const ThreadRequest& request,
                                const LaunchEnvironment& env);
  /// Budget of a nested invocation: exactly `threads` (default 1), no negotiation, no
  /// cpuset (empty). UsageError for threads < 1.
  static ThreadBudget nested(int threads = 1);

  [[nodiscard]] int threads() const { return threads_; }
  /// Cores granted to this rank before the request was applied.
  [[nodiscard]] int granted() const { return granted_; }
  /// Physical cores in this process's cpuset.
  [[nodiscard]] int cpuset_cores() const { return cpuset_cores_; }
  /// The cpuset as a list of OS processor indices, e.g. "0-3,8".
  [[nodiscard]] const std::string& cpuset() const { return cpuset_; }
  /// Why the budget is lower than asked, one line each (empty when it is not).
  [[nodiscard]] const std::vector<std::string>& warnings() const { return warnings_; }

  /// Applies the budget to the calling thread's OpenMP ICVs (num_threads,
  /// max_active_levels = 1), to Eigen, to any BLAS loaded in the process (OpenBLAS,
  /// MKL, BLIS, found with dlsym) and exports OMP/OPENBLAS/MKL/BLIS_NUM_THREADS for
  /// child programs. Call from the thread that will open parallel regions, before other
  /// threads start: Eigen, BLAS and the environment are process-wide, and setenv is not
  /// thread-safe. IoError if setenv fails.
  void apply() const;
  /// Only the OpenMP part of apply(), for a further thread that opens parallel regions
  /// (OpenMP's thread limit is per calling thread in libgomp and libomp). Thread-safe.
  void apply_to_current_thread() const;

private:
  int threads_ = 1;
  int granted_ = 1;
  int cpuset_cores_ = 1;
  std::string cpuset_;
  std::vector<std::string> warnings_;
};

/// Applies `inner` to the calling thread's OpenMP settings and to any loaded BLAS, and
/// restores both on destruction; used around nested invocations that run with a
/// smaller budget. The BLAS count is process-wide (as in threadpoolctl), so a scope on
/// one thread also lowers it for the others while it lives.
class ThreadBudgetScope {
public:
  explicit ThreadBudgetScope(const ThreadBudget& inner);
  ThreadBudgetScope(const ThreadBudgetScope&) = delete;
  ThreadBudgetScope& operator=(const ThreadBudgetScope&) = delete;
  ~ThreadBudgetScope();

private:
  int saved_omp_threads_;
  int saved_max_active_levels_;
  std::array<int, 3> saved_blas_threads_;  ///< OpenBLAS, MKL, BLIS; 0 when not loaded
};

/// One rank's line of `binflow info`.
struct RankPlacement {
  std::string host;
  int rank = 0;
  int local_rank = 0;
  std::string cpuset;
  int threads = 1;
  int cpuset_cores = 1;
  std::vector<std::string> warnings;  ///< the rank's ThreadBudget::warnings()
};

/// Per-node summary: cores used by all ranks' threads versus cores available.
struct NodePlacement {
  std::string host;
  int ranks = 0;
  int threads = 0;          ///< sum of the threads of the node's ranks
  int cores_available = 0;  ///< physical cores in the union of the ranks' cpusets
};

/// Where every rank runs and how many threads it uses.
struct Placement {
  std::vector<RankPlacement> ranks;  ///< in rank order
  std::vector<NodePlacement> nodes;  ///< in order of first rank on the node
  /// One line per node whose threads exceed its cores.
  [[nodiscard]] std::vector<std::string> oversubscription_warnings() const;
  /// The ranks' budget warnings, one line per distinct text naming the ranks that
  /// gave it ("ranks 0-3: OMP_NUM_THREADS=8 exceeds ..."), in order of first rank.
  [[nodiscard]] std::vector<std::string> rank_warnings() const;
};

/// Collective over rt.comm; the result is filled on rank 0 only (empty elsewhere).
/// A budget without a cpuset (ThreadBudget::nested) is placed on the process cpuset.
/// cores_available is computed on each node's first rank. IoError when hwloc or MPI fail.
Placement gather_placement(const Runtime& rt, const ThreadBudget& budget);

}  // namespace binflow
