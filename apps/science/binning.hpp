#pragma once
// The binnings of the gamma-ray tools (ctools vocabulary: tbinalg LIN/GTI/FILE, ebinalg
// LOG/FILE, phase bins), built from the framework's domain-free BinPlan on the axes of
// SCIENCE.md: time in MET s, energy in TeV (above 0), pulse phase in [0, 1].
#include <cstdint>
#include <span>
#include <string>

#include "binflow/bins.hpp"

namespace binflow::science {

[[nodiscard]] Axis time_axis();
[[nodiscard]] Axis energy_axis();
[[nodiscard]] Axis phase_axis();

/// `tbins` equal time bins between tmin and tmax (tbinalg=LIN).
BinPlan time_linear(double tmin, double tmax, std::int64_t tbins);
/// One bin per good time interval, clipped to [tmin, tmax); intervals outside are dropped
/// (tbinalg=GTI). UsageError for GTIs that are reversed, overlap or are out of order, or
/// when none overlaps [tmin, tmax).
BinPlan time_from_gtis(std::span<const double> start, std::span<const double> stop, double tmin,
                       double tmax);
/// Bins from a two-column text file "start stop" in MET s (tbinalg=FILE).
BinPlan time_from_file(const std::string& path);
/// `enumbins` log-spaced energy bins between emin > 0 and emax, TeV (ebinalg=LOG).
BinPlan energy_log(double emin, double emax, std::int64_t enumbins);
/// Energy bins from a two-column text file "emin emax" in TeV (ebinalg=FILE).
BinPlan energy_from_file(const std::string& path);
/// `phbins` equal phase bins covering [0, 1).
BinPlan phase_bins(std::int64_t phbins);
/// Phase bins from a two-column text file "phmin phmax" within [0, 1].
BinPlan phase_from_file(const std::string& path);

}  // namespace binflow::science
