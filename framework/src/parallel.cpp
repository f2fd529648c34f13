#include "binflow/parallel.hpp"

#include <fmt/format.h>

#include "binflow/error.hpp"

namespace binflow::detail {

void throw_bad_thread_count(int threads) {
  throw InternalError(
      fmt::format("parallel loop: {} threads requested (a budget is at least 1)", threads));
}

}  // namespace binflow::detail
