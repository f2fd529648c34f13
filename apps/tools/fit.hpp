#pragma once
// `binflow fit`: one likelihood fit of a whole selection (time range, energy range, region
// of interest; SCIENCE.md sections 2-3), written as a one-row table. It is also the building
// block other tools call nested (spectrum's global fit, pull's trials): the same class, run
// through BinContext::invoke, on events read from `inobs` or handed over in memory.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>

#include "binflow/tool.hpp"
#include "science/event_file.hpp"
#include "science/likelihood.hpp"

namespace binflow::apps {

/// The events of [t0, t1) of `reader` inside the region of interest of `settings`, read one
/// GTI piece of at most `window` seconds at a time (so memory follows the selection, not
/// the file), in file order; `keep(time)`, when given, drops events before the selection
/// (phase bins). The livetime is that of [t0, t1). Not thread-safe (HDF5).
science::RoiEvents read_roi(const science::EventFileReader& reader, double t0, double t1,
                            const science::FitSettings& settings,
                            const std::function<bool(double)>& keep = {}, double window = 3600.0);

class FitTool final : public Tool {
public:
  FitTool() { reset(); }
  [[nodiscard]] std::string name() const override { return "fit"; }
  [[nodiscard]] std::string summary() const override {
    return "one likelihood fit of a selection: N0, beta (and gamma), errors, flux, TS and upper "
           "limit";
  }
  /// Columns of the one-row /results table (time range, energy range, then the science
  /// columns of lightcurve).
  [[nodiscard]] static Schema schema();

  /// The next run (one only) fits these events of `observation` (its GTIs, deadtime,
  /// response and pointing) instead of reading `inobs`, which may then be empty. For
  /// nested use: call before BinContext::invoke; configure() keeps them.
  void use_events(science::Observation observation, science::Events events);

protected:
  void declare(ParameterSet& params) override;
  void reset() override;
  void validate() override;
  /// Collective over ctx.runtime().comm: a one-bin map (ordered log, status, checkpoint).
  ToolOutput execute(RunContext& ctx) override;

private:
  [[nodiscard]] science::FitSettings fit_settings(const science::Observation& obs) const;
  [[nodiscard]] std::pair<double, double> time_range(const science::Observation& obs,
                                                     const std::string& source) const;

  std::string inobs_;
  double tmin_;
  double tmax_;
  double emin_;
  double emax_;
  double ra_;
  double dec_;
  double theta_max_;
  double gamma_ref_;
  bool free_index_;
  bool calc_ts_;
  bool calc_ulim_;
  double confidence_;

  // Not parameters: survive configure() and are consumed by the next run.
  std::optional<science::Observation> given_observation_;
  std::optional<science::Events> given_events_;
};

}  // namespace binflow::apps
