#pragma once
// OpenMP loops inside a bin, with two of binflow's rules built in: no exception escapes a
// parallel region (one escaping would call std::terminate), and a sum is the same bits for
// any number of threads.
//
// Both take the thread count from the caller, normally the bin's budget
// (BinContext::budget().threads()), and never read omp_get_max_threads(): the count a
// computation uses is then visible at its call site, and a caller with a budget of its own
// (a nested run, a further compute thread) cannot inherit a stale OpenMP setting.
//
// Determinism: floating-point addition is not associative, so a sum whose grouping follows
// the thread count (an OpenMP `reduction`, partial sums per thread) changes in the last bits
// with it. ordered_block_reduce fixes the grouping instead: the caller cuts the work into
// blocks whose boundaries do not depend on the thread count, each block is computed by one
// thread in a fixed order, and the block results are combined on one thread in block order.
// Which thread computed a block then cannot show in the result.
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "binflow/detail/parallel.hpp"

namespace binflow {

/// How parallel_for hands out iterations.
enum class LoopSchedule {
  contiguous,  ///< one contiguous range per thread (`schedule(static)`): iterations of equal cost
  dynamic,     ///< one iteration at a time to the next idle thread: iterations of uneven cost
};

/// Runs body(i) for every i in [0, n) on a team of `threads` OpenMP threads
/// (`num_threads(threads)`; the team is smaller only where OpenMP allows no more, e.g.
/// inside another active region with max_active_levels = 1). With threads == 1 or n <= 1
/// the iterations run in the calling thread in order, without a parallel region.
///
/// body(i) is called concurrently for different i; it must be safe to do so.
/// Exceptions: every exception is caught inside the region; after all threads have
/// stopped, the one thrown by the lowest failing index is rethrown, which is the exception
/// a serial loop would throw, whatever the thread count. Iterations above a failed index
/// that have not started yet are skipped. InternalError if threads < 1.
///
/// Not collective. Thread-safe: threads may call it at the same time, each with its own
/// budget; every call opens its own team.
template <class Body>
void parallel_for(int threads, std::int64_t n, const Body& body,
                  LoopSchedule schedule = LoopSchedule::contiguous) {
  if (threads < 1) detail::throw_bad_thread_count(threads);
  if (threads == 1 || n <= 1) {
    for (std::int64_t i = 0; i < n; ++i) body(i);
    return;
  }
  detail::LoopError error(n);
  // The branches differ in the schedule clause, which must be known at compile time.
  if (schedule == LoopSchedule::dynamic) {  // NOLINT(bugprone-branch-clone)
#pragma omp parallel for default(none) shared(n, body, error) num_threads(threads) schedule(dynamic)
    for (std::int64_t i = 0; i < n; ++i) detail::run_iteration(body, i, error);
  } else {
#pragma omp parallel for default(none) shared(n, body, error) num_threads(threads) schedule(static)
    for (std::int64_t i = 0; i < n; ++i) detail::run_iteration(body, i, error);
  }
  error.rethrow();
}

/// The result type of ordered_block_reduce for a block function.
template <class BlockValue>
using BlockResult = std::decay_t<std::invoke_result_t<const BlockValue&, std::int64_t>>;

/// Computes block_value(b) for every block b in [0, n_blocks) over `threads` threads
/// (parallel_for, contiguous ranges), then, on the calling thread,
///     total = T{}; combine(total, part_0); combine(total, part_1); ...
/// in block order, and returns total. The result is the same bits for any `threads` as
/// long as block_value(b) depends on b alone (see the top of this file), and it equals the
/// serial loop's. T is default-constructible (T{} is the start value) and is not bool;
/// n_blocks values of T are held at once. Exceptions, threads < 1, collectiveness and
/// thread safety: as parallel_for.
template <class BlockValue, class Combine>
BlockResult<BlockValue> ordered_block_reduce(int threads, std::int64_t n_blocks,
                                             const BlockValue& block_value, Combine combine) {
  using T = BlockResult<BlockValue>;
  static_assert(!std::is_same_v<T, bool>,
                "std::vector<bool> elements cannot be written in parallel");
  if (threads < 1) detail::throw_bad_thread_count(threads);
  T total{};
  if (threads == 1 || n_blocks <= 1) {
    for (std::int64_t b = 0; b < n_blocks; ++b) combine(total, block_value(b));
    return total;
  }
  std::vector<T> parts(static_cast<std::size_t>(n_blocks));
  parallel_for(threads, n_blocks, [&parts, &block_value](std::int64_t b) {
    parts[static_cast<std::size_t>(b)] = block_value(b);
  });
  for (const T& part : parts) combine(total, part);
  return total;
}

/// ordered_block_reduce with `total += part`: the deterministic sum of block values (for
/// example a double per block of draws, each block summed serially).
template <class BlockValue>
BlockResult<BlockValue> ordered_block_sum(int threads, std::int64_t n_blocks,
                                          const BlockValue& block_value) {
  return ordered_block_reduce(
      threads, n_blocks, block_value,
      [](BlockResult<BlockValue>& total, const BlockResult<BlockValue>& part) { total += part; });
}

}  // namespace binflow
