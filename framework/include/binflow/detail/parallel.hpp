#pragma once
// Internals of binflow/parallel.hpp.
#include <atomic>
#include <cstdint>
#include <exception>

namespace binflow::detail {

/// InternalError naming `threads` (a budget is never below 1, so this is a caller's bug).
[[noreturn]] void throw_bad_thread_count(int threads);

/// The exception of the lowest failing iteration of one parallel loop. The index is also
/// kept in an atomic so that iterations above it can be skipped without taking the lock;
/// only the critical section writes.
class LoopError {
public:
  explicit LoopError(std::int64_t n) : first_(n) {}

  /// Whether iteration i can no longer change the outcome (a lower one has failed).
  [[nodiscard]] bool skip(std::int64_t i) const {
    return i > first_.load(std::memory_order_relaxed);
  }

  /// Call from inside a catch block.
  void record(std::int64_t i) noexcept {
#pragma omp critical(binflow_parallel_loop_error)
    if (i < first_.load(std::memory_order_relaxed)) {
      error_ = std::current_exception();
      first_.store(i, std::memory_order_relaxed);
    }
  }

  void rethrow() const {
    if (error_) std::rethrow_exception(error_);
  }

private:
  std::atomic<std::int64_t> first_;
  std::exception_ptr error_;
};

template <class Body>
void run_iteration(const Body& body, std::int64_t i, LoopError& error) noexcept {
  if (error.skip(i)) return;
  try {
    body(i);
  } catch (...) {
    error.record(i);
  }
}

}  // namespace binflow::detail
