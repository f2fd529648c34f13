#include "binflow/thread_budget.hpp"

#include <dlfcn.h>
#include <hwloc.h>
#include <omp.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <source_location>
#include <string_view>
#include <utility>
#include <vector>

#include <Eigen/Core>
#include <fmt/format.h>

#include "binflow/error.hpp"
#include "binflow/memory_limit.hpp"
#include "text.hpp"

namespace binflow {

using detail::trim;
namespace {

// ---------------------------------------------------------------------------------------
// hwloc: checked calls and move-only owners

/// hwloc reports failures as -1 (or null) with errno set.
void check_hwloc(int rc, std::string_view call,
                 std::source_location where = std::source_location::current()) {
  if (rc >= 0) return;
  throw IoError(fmt::format("{} failed: {} ({}:{})", call, std::strerror(errno), where.file_name(),
                            where.line()));
}

/// Like check_hwloc, but false instead of an error where the OS has no such support.
bool check_hwloc_supported(int rc, std::string_view call,
                           std::source_location where = std::source_location::current()) {
  if (rc < 0 && errno == ENOSYS) return false;
  check_hwloc(rc, call, where);
  return true;
}

template <class T>
T* check_hwloc_ptr(T* ptr, std::string_view call,
                   std::source_location where = std::source_location::current()) {
  if (ptr == nullptr) check_hwloc(-1, call, where);
  return ptr;
}

class Bitmap {
public:
  Bitmap() : map_(check_hwloc_ptr(hwloc_bitmap_alloc(), "hwloc_bitmap_alloc")) {}
  /// Parses hwloc's list format ("0-3,8"); InternalError for text binflow did not write.
  static Bitmap from_list(const std::string& text) {
    Bitmap out;
    if (hwloc_bitmap_list_sscanf(out.map_, text.c_str()) < 0) {
      throw InternalError(fmt::format("'{}' is not an hwloc cpuset list", text));
    }
    return out;
  }
  Bitmap(Bitmap&& other) noexcept : map_(std::exchange(other.map_, nullptr)) {}
  Bitmap& operator=(Bitmap&& other) noexcept {
    std::swap(map_, other.map_);
    return *this;
  }
  Bitmap(const Bitmap&) = delete;
  Bitmap& operator=(const Bitmap&) = delete;
  ~Bitmap() {
    if (map_ != nullptr) hwloc_bitmap_free(map_);
  }

  [[nodiscard]] hwloc_bitmap_t get() const { return map_; }
  [[nodiscard]] std::string to_list() const {
    char* text = nullptr;
    check_hwloc(hwloc_bitmap_list_asprintf(&text, map_), "hwloc_bitmap_list_asprintf");
    std::string out(text);
    std::free(text);  // NOLINT(cppcoreguidelines-no-malloc): hwloc allocates with malloc
    return out;
  }
  [[nodiscard]] bool intersects(const Bitmap& other) const {
    return hwloc_bitmap_intersects(map_, other.map_) != 0;
  }
  void unite(hwloc_const_bitmap_t other) {
    check_hwloc(hwloc_bitmap_or(map_, map_, other), "hwloc_bitmap_or");
  }

private:
  hwloc_bitmap_t map_;
};

class Topology {
public:
  /// Loads this machine's topology (restricted to the resources the process may use).
  static Topology load() {
    hwloc_topology_t topo = nullptr;
    check_hwloc(hwloc_topology_init(&topo), "hwloc_topology_init");
    Topology out(topo);
    check_hwloc(hwloc_topology_load(topo), "hwloc_topology_load");
    return out;
  }
  Topology(Topology&& other) noexcept : topo_(std::exchange(other.topo_, nullptr)) {}
  Topology& operator=(Topology&& other) noexcept {
    std::swap(topo_, other.topo_);
    return *this;
  }
  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;
  ~Topology() {
    if (topo_ != nullptr) hwloc_topology_destroy(topo_);
  }

  /// The PUs this process may run on.
  [[nodiscard]] Bitmap process_cpuset() const {
    Bitmap set;
    const int rc = hwloc_get_cpubind(topo_, set.get(), HWLOC_CPUBIND_PROCESS);
    if (check_hwloc_supported(rc, "hwloc_get_cpubind")) {
      unite_openmp_places(set);
      return set;
    }
    // Without binding support (macOS) the process may run on every allowed PU.
    check_hwloc(hwloc_bitmap_copy(set.get(), hwloc_topology_get_allowed_cpuset(topo_)),
                "hwloc_bitmap_copy");
    return set;
  }

  /// With OMP_PROC_BIND or OMP_PLACES set (as job scripts do), libgomp binds the initial
  /// thread to the first place before main() runs, so the binding read above may be one
  /// core; the places still list every PU the process was given.
  static void unite_openmp_places(Bitmap& set) {
    const int places = omp_get_num_places();
    for (int p = 0; p < places; ++p) {
      std::vector<int> ids(static_cast<std::size_t>(std::max(omp_get_place_num_procs(p), 0)));
      omp_get_place_proc_ids(p, ids.data());
      for (const int id : ids) {
        if (id < 0) continue;
        check_hwloc(hwloc_bitmap_set(set.get(), static_cast<unsigned>(id)), "hwloc_bitmap_set");
      }
    }
  }

  /// Every PU of every core that `set` touches: two ranks on the two hyperthreads of one
  /// core share that core.
  [[nodiscard]] Bitmap core_closure(const Bitmap& set) const {
    Bitmap out;
    for_each_core(set, [&](hwloc_obj_t core) { out.unite(core->cpuset); });
    return out;
  }

  [[nodiscard]] int count_cores(const Bitmap& set) const {
    int count = 0;
    for_each_core(set, [&](hwloc_obj_t) { ++count; });
    return count;
  }

private:
  explicit Topology(hwloc_topology_t topo) : topo_(topo) {}

  template <class Fn>
  void for_each_core(const Bitmap& set, Fn&& fn) const {
    // Some virtual machines and containers report PUs without cores.
    const hwloc_obj_type_t type =
        hwloc_get_nbobjs_by_type(topo_, HWLOC_OBJ_CORE) > 0 ? HWLOC_OBJ_CORE : HWLOC_OBJ_PU;
    for (hwloc_obj_t obj = hwloc_get_next_obj_by_type(topo_, type, nullptr); obj != nullptr;
         obj = hwloc_get_next_obj_by_type(topo_, type, obj)) {
      if (hwloc_bitmap_intersects(obj->cpuset, set.get()) != 0) fn(obj);
    }
  }

  hwloc_topology_t topo_;
};

// ---------------------------------------------------------------------------------------
// Negotiation

std::string cores_text(int n) { return fmt::format("{} core{}", n, n == 1 ? "" : "s"); }

/// A limit on the threads of a rank and where it comes from, for the warning text.
struct Limit {
  int value = 1;
  std::string source;
};

/// This rank's part of the cores of its cpuset, shared with the node-local ranks whose
/// cpusets touch the same cores.
Limit cpuset_share(const Topology& topo, const Bitmap& mine, const std::string& mine_text,
                   int cores, const std::vector<std::string>& node_cpusets, int local_rank) {
  const Bitmap my_cores = topo.core_closure(mine);
  int sharers = 0;
  int position = 0;
  for (std::size_t i = 0; i < node_cpusets.size(); ++i) {
    if (!my_cores.intersects(Bitmap::from_list(node_cpusets[i]))) continue;
    if (static_cast<int>(i) < local_rank) ++position;
    ++sharers;
  }
  sharers = std::max(sharers, 1);
  const int share = cores / sharers + (position < cores % sharers ? 1 : 0);
  std::string source = fmt::format("{} in cpuset {}", cores_text(cores), mine_text);
  if (sharers > 1) source += fmt::format(" shared by {} ranks on this node", sharers);
  return Limit{std::max(share, 1), std::move(source)};
}

std::vector<std::pair<std::string, std::optional<int>>> environment_limits(
    const LaunchEnvironment& env) {
  return {{"OMP_NUM_THREADS", env.omp_num_threads},
          {"SLURM_CPUS_PER_TASK", env.slurm_cpus_per_task},
          {"SRUN_CPUS_PER_TASK", env.srun_cpus_per_task},
          {"NCPUS", env.pbs_ncpus}};
}

/// The share lowered by the launch environment; a value above the result gets a warning.
Limit grant(Limit share, const LaunchEnvironment& env, std::vector<std::string>& warnings) {
  const auto limits = environment_limits(env);
  Limit out = std::move(share);
  for (const auto& [name, value] : limits) {
    if (value && *value < out.value) out = Limit{*value, fmt::format("{}={}", name, *value)};
  }
  for (const auto& [name, value] : limits) {
    if (!value || *value <= out.value) continue;
    warnings.push_back(fmt::format("{}={} exceeds the {} granted to this rank ({}), capped at {}",
                                   name, *value, cores_text(out.value), out.source, out.value));
  }
  return out;
}

int honour_request(const ThreadRequest& request, const Limit& granted,
                   std::vector<std::string>& warnings) {
  if (request.nthreads == 0) return granted.value;
  if (request.nthreads <= granted.value || request.oversubscribe) return request.nthreads;
  warnings.push_back(fmt::format(
      "nthreads={} exceeds the {} granted to this rank ({}), capped at {} (--oversubscribe "
      "allows more)",
      request.nthreads, cores_text(granted.value), granted.source, granted.value));
  return granted.value;
}

// ---------------------------------------------------------------------------------------
// Launch environment

/// A positive int, or nullopt when `text` is anything else (sign, spaces, overflow).
std::optional<int> positive_int(std::string_view text) {
  int value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 1) return std::nullopt;
  return value;
}

/// The variable's value, nullopt when unset or empty. `list` accepts "4,2" (OpenMP's one
/// value per nesting level, with optional blanks) and gives the first element.
std::optional<int> read_count(const std::function<const char*(const char*)>& lookup,
                              const char* name, bool list) {
  const char* raw = lookup(name);
  if (raw == nullptr || trim(raw).empty()) return std::nullopt;
  const std::string_view text = trim(raw);
  std::optional<int> first;
  std::size_t at = 0;
  do {
    const std::size_t comma = list ? text.find(',', at) : std::string_view::npos;
    const std::optional<int> value = positive_int(trim(text.substr(at, comma - at)));
    if (!value) {
      throw UsageError(fmt::format("{}={} is not a positive integer{}", name, raw,
                                   list ? " or a comma-separated list of them" : ""));
    }
    if (!first) first = value;
    at = comma == std::string_view::npos ? comma : comma + 1;
  } while (at != std::string_view::npos);
  return first;
}

// Slurm exports --mem and --mem-per-cpu in MiB; a unit is accepted too. 0 asks for the
// whole node, which is no bound of binflow's to keep.
std::optional<std::int64_t> read_slurm_memory(
    const std::function<const char*(const char*)>& lookup, const char* name) {
  const char* raw = lookup(name);
  if (raw == nullptr || trim(raw).empty()) return std::nullopt;
  const std::string_view text = trim(raw);
  const bool digits_only = text.find_first_not_of("0123456789") == std::string_view::npos;
  const std::optional<std::int64_t> bytes =
      parse_memory_size(digits_only ? std::string(text) + "MiB" : std::string(text));
  if (!bytes) throw UsageError(fmt::format("{}={} is not a memory size in MiB", name, raw));
  if (*bytes == 0) return std::nullopt;
  return bytes;
}

// ---------------------------------------------------------------------------------------
// BLAS runtimes loaded in the process, found the way threadpoolctl finds them

template <class Fn>
Fn* find_symbol(const char* name) {
  return reinterpret_cast<Fn*>(dlsym(RTLD_DEFAULT, name));
}

/// BLIS counts threads in dim_t, a 64-bit integer in its default build.
using BlisDim = std::int64_t;

/// Thread counts of the loaded OpenBLAS, MKL and BLIS in that order, 0 for one not loaded.
using BlasThreads = std::array<int, 3>;

BlasThreads blas_threads() {
  BlasThreads out{};
  if (auto* get = find_symbol<int()>("openblas_get_num_threads")) out[0] = get();
  if (auto* get = find_symbol<int()>("MKL_Get_Max_Threads")) out[1] = get();
  if (auto* get = find_symbol<BlisDim()>("bli_thread_get_num_threads")) {
    out[2] = static_cast<int>(get());
  }
  return out;
}

/// Sets each loaded BLAS whose entry is positive.
void set_blas_threads(const BlasThreads& threads) {
  if (auto* set = find_symbol<void(int)>("openblas_set_num_threads"); set && threads[0] > 0) {
    set(threads[0]);
  }
  if (auto* set = find_symbol<void(int)>("MKL_Set_Num_Threads"); set && threads[1] > 0) {
    set(threads[1]);
  }
  if (auto* set = find_symbol<void(BlisDim)>("bli_thread_set_num_threads"); set && threads[2] > 0) {
    set(threads[2]);
  }
}

void set_blas_threads(int threads) { set_blas_threads(BlasThreads{threads, threads, threads}); }

void export_variable(const char* name, int value) {
  if (setenv(name, std::to_string(value).c_str(), 1) != 0) {
    throw IoError(fmt::format("setenv {} failed: {}", name, std::strerror(errno)));
  }
}

// ---------------------------------------------------------------------------------------
// Placement

/// Ranks as compact text: "rank 3", "ranks 0-3", "ranks 0,2,5-6".
std::string rank_list(const std::vector<int>& ranks) {
  std::string out = ranks.size() == 1 ? "rank " : "ranks ";
  for (std::size_t i = 0; i < ranks.size();) {
    std::size_t j = i;
    while (j + 1 < ranks.size() && ranks[j + 1] == ranks[j] + 1) ++j;
    if (i > 0) out += ',';
    out += j == i ? std::to_string(ranks[i]) : fmt::format("{}-{}", ranks[i], ranks[j]);
    i = j + 1;
  }
  return out;
}

/// Collective over `node`: cores in the union of the node's cpusets, on its rank 0.
int node_cores_available(const Communicator& node, const std::string& cpuset) {
  const std::vector<std::string> cpusets = node.gather(cpuset);
  if (!node.is_root()) return 0;
  const Topology topo = Topology::load();
  Bitmap all;
  for (const std::string& text : cpusets) all.unite(Bitmap::from_list(text).get());
  return topo.count_cores(all);
}

/// Numbers that travel to rank 0 with each rank's line.
struct RankNumbers {
  int rank;
  int local_rank;
  int threads;
  int cpuset_cores;
  int node_id;          ///< rank in the run's communicator of the node's first rank
  int cores_available;  ///< valid on the node's first rank only
};

/// Host, cpuset and warnings, one per line (none of them contains a newline).
std::string rank_text(const std::string& host, const std::string& cpuset,
                      const std::vector<std::string>& warnings) {
  std::string out = host + '\n' + cpuset;
  for (const std::string& line : warnings) out += '\n' + line;
  return out;
}

RankPlacement parse_rank(const RankNumbers& numbers, const std::string& text) {
  RankPlacement out;
  out.rank = numbers.rank;
  out.local_rank = numbers.local_rank;
  out.threads = numbers.threads;
  out.cpuset_cores = numbers.cpuset_cores;
  std::vector<std::string> lines;
  for (std::size_t at = 0;;) {
    const std::size_t end = text.find('\n', at);
    lines.push_back(text.substr(at, end - at));
    if (end == std::string::npos) break;
    at = end + 1;
  }
  if (lines.size() < 2) throw InternalError("placement text of a rank lost its cpuset");
  out.host = lines[0];
  out.cpuset = lines[1];
  out.warnings.assign(lines.begin() + 2, lines.end());
  return out;
}

Placement assemble(const std::vector<RankNumbers>& numbers, const std::vector<std::string>& texts) {
  Placement out;
  std::map<int, std::size_t> node_of;
  for (std::size_t i = 0; i < numbers.size(); ++i) {
    out.ranks.push_back(parse_rank(numbers[i], texts[i]));
    const auto [it, added] = node_of.try_emplace(numbers[i].node_id, out.nodes.size());
    if (added) out.nodes.push_back(NodePlacement{out.ranks.back().host, 0, 0, 0});
    NodePlacement& node = out.nodes[it->second];
    ++node.ranks;
    node.threads += numbers[i].threads;
    if (numbers[i].local_rank == 0) node.cores_available = numbers[i].cores_available;
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------

LaunchEnvironment LaunchEnvironment::from_environ() {
  return from_lookup([](const char* name) -> const char* { return std::getenv(name); });
}

LaunchEnvironment LaunchEnvironment::from_lookup(
    const std::function<const char*(const char*)>& lookup) {
  LaunchEnvironment env;
  env.omp_num_threads = read_count(lookup, "OMP_NUM_THREADS", true);
  env.slurm_cpus_per_task = read_count(lookup, "SLURM_CPUS_PER_TASK", false);
  env.srun_cpus_per_task = read_count(lookup, "SRUN_CPUS_PER_TASK", false);
  if (lookup("PBS_JOBID") != nullptr) env.pbs_ncpus = read_count(lookup, "NCPUS", false);
  env.slurm_mem_per_cpu = read_slurm_memory(lookup, "SLURM_MEM_PER_CPU");
  env.slurm_mem_per_node = read_slurm_memory(lookup, "SLURM_MEM_PER_NODE");
  return env;
}

ThreadBudget ThreadBudget::negotiate(const Runtime& rt, const ThreadRequest& request,
                                     const LaunchEnvironment& env) {
  if (request.nthreads < 0) {
    throw UsageError(
        fmt::format("nthreads={} must be 0 (all granted cores) or more", request.nthreads));
  }
  const Topology topo = Topology::load();
  const Bitmap mine = topo.process_cpuset();
  ThreadBudget out;
  out.cpuset_ = mine.to_list();
  out.cpuset_cores_ = std::max(topo.count_cores(mine), 1);
  const std::vector<std::string> node_cpusets = rt.node.all_gather(out.cpuset_);
  const Limit share =
      cpuset_share(topo, mine, out.cpuset_, out.cpuset_cores_, node_cpusets, rt.local_rank());
  const Limit granted = grant(share, env, out.warnings_);
  out.granted_ = granted.value;
  out.threads_ = honour_request(request, granted, out.warnings_);
  return out;
}

ThreadBudget ThreadBudget::nested(int threads) {
  if (threads < 1) {
    throw UsageError(fmt::format("a nested run needs at least 1 thread, not {}", threads));
  }
  ThreadBudget out;
  out.threads_ = threads;
  out.granted_ = threads;
  out.cpuset_cores_ = threads;
  return out;
}

void ThreadBudget::apply() const {
  apply_to_current_thread();
  Eigen::setNbThreads(threads_);
  set_blas_threads(threads_);
  for (const char* name :
       {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"}) {
    export_variable(name, threads_);
  }
}

void ThreadBudget::apply_to_current_thread() const {
  omp_set_num_threads(threads_);
  // Nested parallel regions would multiply the budget (a BLAS call inside an OpenMP loop).
  omp_set_max_active_levels(1);
}

ThreadBudgetScope::ThreadBudgetScope(const ThreadBudget& inner)
    : saved_omp_threads_(omp_get_max_threads()),
      saved_max_active_levels_(omp_get_max_active_levels()),
      saved_blas_threads_(blas_threads()) {
  inner.apply_to_current_thread();
  set_blas_threads(inner.threads());
}

ThreadBudgetScope::~ThreadBudgetScope() {
  omp_set_num_threads(saved_omp_threads_);
  omp_set_max_active_levels(saved_max_active_levels_);
  set_blas_threads(saved_blas_threads_);
}

std::vector<std::string> Placement::oversubscription_warnings() const {
  std::vector<std::string> out;
  for (const NodePlacement& node : nodes) {
    if (node.threads <= node.cores_available) continue;
    const char* why =
        node.ranks > node.cores_available ? "more ranks than cores" : "more threads than cores";
    out.push_back(
        fmt::format("node {}: {} rank{} x threads = {} threads on {} (oversubscribed: {})",
                    node.host, node.ranks, node.ranks == 1 ? "" : "s", node.threads,
                    cores_text(node.cores_available), why));
  }
  return out;
}

std::vector<std::string> Placement::rank_warnings() const {
  std::vector<std::pair<std::string, std::vector<int>>> grouped;
  for (const RankPlacement& rank : ranks) {
    for (const std::string& text : rank.warnings) {
      auto it = std::find_if(grouped.begin(), grouped.end(),
                             [&](const auto& entry) { return entry.first == text; });
      if (it == grouped.end()) it = grouped.insert(grouped.end(), {text, {}});
      it->second.push_back(rank.rank);
    }
  }
  std::vector<std::string> out;
  out.reserve(grouped.size());
  for (const auto& [text, which] : grouped) out.push_back(rank_list(which) + ": " + text);
  return out;
}

Placement gather_placement(const Runtime& rt, const ThreadBudget& budget) {
  std::string cpuset = budget.cpuset();
  int cpuset_cores = budget.cpuset_cores();
  if (cpuset.empty()) {
    const Topology topo = Topology::load();
    const Bitmap mine = topo.process_cpuset();
    cpuset = mine.to_list();
    cpuset_cores = std::max(topo.count_cores(mine), 1);
  }
  int node_id = rt.rank();
  rt.node.broadcast(node_id);
  const RankNumbers mine{.rank = rt.rank(),
                         .local_rank = rt.local_rank(),
                         .threads = budget.threads(),
                         .cpuset_cores = cpuset_cores,
                         .node_id = node_id,
                         .cores_available = node_cores_available(rt.node, cpuset)};
  const std::vector<RankNumbers> numbers = rt.comm.gather(mine);
  const std::vector<std::string> texts =
      rt.comm.gather(rank_text(rt.host, cpuset, budget.warnings()));
  if (!rt.comm.is_root()) return {};
  return assemble(numbers, texts);
}

}  // namespace binflow
