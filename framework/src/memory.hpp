#pragma once
// The machine's physical memory, for the checks that refuse sizes nothing could hold (a
// dataset a file claims, the results of a binning) before they are allocated.
#include <unistd.h>

namespace binflow::detail {

/// Bytes of physical memory of this node, or 0 if the system does not say.
inline double physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<double>(pages) * static_cast<double>(page) : 0.0;
}

}  // namespace binflow::detail
