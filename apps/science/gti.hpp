#pragma once
// Good time intervals: validation, overlap with a time bin, livetime.
#include <string>

#include "science/observation.hpp"

namespace binflow::science {

/// UsageError naming `source` unless start/stop have equal length, are finite, each
/// start < stop, and intervals are sorted and do not overlap.
void validate_gti(const Gti& gti, const std::string& source);
/// Total overlap of [t0, t1) with the GTIs, s.
double ontime(const Gti& gti, double t0, double t1);
/// ontime * (1 - deadtime_fraction).
double livetime(const Gti& gti, double t0, double t1, double deadtime_fraction);
/// Whether t lies in a GTI (half-open).
bool in_gti(const Gti& gti, double t);

}  // namespace binflow::science
