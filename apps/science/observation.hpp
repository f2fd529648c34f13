#pragma once
// The data of one observation as SCIENCE.md section 1 defines it: response tables,
// good time intervals, pointing and bookkeeping, and event lists.
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "science/defaults.hpp"

namespace binflow::science {

/// Instrument response tables on an energy grid (TeV), strictly increasing, > 0.
struct IrfTables {
  std::vector<double> energy;     ///< TeV
  std::vector<double> aeff;       ///< cm^2, >= 0
  std::vector<double> psf_sigma;  ///< deg, > 0
  std::vector<double> bkg_rate;   ///< counts s^-1 TeV^-1 deg^-2, >= 0
};

/// Good time intervals [start, stop), MET s, sorted and non-overlapping.
struct Gti {
  std::vector<double> start;
  std::vector<double> stop;
  [[nodiscard]] std::size_t size() const { return start.size(); }
};

/// File-level attributes of an event file.
struct ObservationInfo {
  double mjdref = 51544.5;
  /// Time system of mjdref and the event times. binflow's HDF5 event files carry none: their
  /// times are taken as TT, the GADF default.
  std::string timesys = "TT";
  std::string object = "Crab";
  double ra_pnt = defaults::ra;    ///< deg
  double dec_pnt = defaults::dec;  ///< deg
  double deadtime_fraction = 0.05;
};

/// Everything but the events.
struct Observation {
  ObservationInfo info;
  IrfTables irf;
  Gti gti;
};

/// Events in column form (all four columns have the same length).
struct Events {
  /// Bytes of one event held in memory (its four columns).
  static constexpr std::size_t row_bytes = 4 * sizeof(double);
  std::vector<double> time;    ///< MET s
  std::vector<double> energy;  ///< TeV
  std::vector<double> ra;      ///< deg
  std::vector<double> dec;     ///< deg
  [[nodiscard]] std::size_t size() const { return time.size(); }
  void reserve(std::size_t n) {
    time.reserve(n);
    energy.reserve(n);
    ra.reserve(n);
    dec.reserve(n);
  }
};

/// Four event columns of the same length, not owned: an Events' columns or a reader's
/// buffers (valid until that reader's next read).
struct EventsView {
  std::span<const double> time;    ///< MET s, sorted ascending
  std::span<const double> energy;  ///< TeV
  std::span<const double> ra;      ///< deg
  std::span<const double> dec;     ///< deg
  [[nodiscard]] std::size_t size() const { return time.size(); }
};

[[nodiscard]] inline EventsView view_of(const Events& events) {
  return {events.time, events.energy, events.ra, events.dec};
}

/// Called by the event readers with the number of rows they are about to read, before they
/// allocate for them (a memory_limit check); may throw to stop the read.
using BeforeRead = std::function<void(std::int64_t rows)>;

}  // namespace binflow::science
