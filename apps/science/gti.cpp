#include "science/gti.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "binflow/error.hpp"

namespace binflow::science {

void validate_gti(const Gti& gti, const std::string& source) {
  if (gti.start.size() != gti.stop.size()) {
    throw UsageError(fmt::format("{}: /gti/start and /gti/stop differ in length ({} vs {})", source,
                                 gti.start.size(), gti.stop.size()));
  }
  for (std::size_t i = 0; i < gti.size(); ++i) {
    if (!std::isfinite(gti.start[i]) || !std::isfinite(gti.stop[i]) ||
        gti.start[i] >= gti.stop[i]) {
      throw UsageError(fmt::format("{}: GTI {} [{}, {}) is empty or not finite", source, i,
                                   gti.start[i], gti.stop[i]));
    }
    if (i > 0 && gti.start[i] < gti.stop[i - 1]) {
      throw UsageError(
          fmt::format("{}: GTIs overlap or are out of order (GTI {} starts at {} before "
                      "GTI {} stops at {})",
                      source, i, gti.start[i], i - 1, gti.stop[i - 1]));
    }
  }
}

double ontime(const Gti& gti, double t0, double t1) {
  double total = 0.0;
  // GTIs are sorted: start at the first one that ends after t0.
  auto it = std::upper_bound(gti.stop.begin(), gti.stop.end(), t0);
  for (auto i = static_cast<std::size_t>(it - gti.stop.begin());
       i < gti.size() && gti.start[i] < t1; ++i) {
    total += std::max(0.0, std::min(t1, gti.stop[i]) - std::max(t0, gti.start[i]));
  }
  return total;
}

double livetime(const Gti& gti, double t0, double t1, double deadtime_fraction) {
  return ontime(gti, t0, t1) * (1.0 - deadtime_fraction);
}

bool in_gti(const Gti& gti, double t) {
  const auto it = std::upper_bound(gti.stop.begin(), gti.stop.end(), t);
  const auto i = static_cast<std::size_t>(it - gti.stop.begin());
  return i < gti.size() && gti.start[i] <= t;
}

}  // namespace binflow::science
