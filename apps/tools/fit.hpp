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
#include "tools/analysis.hpp"

namespace binflow::apps {

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
  AnalysisParameters analysis_;

  // Not parameters: survive configure() and are consumed by the next run.
  std::optional<science::Observation> given_observation_;
  std::optional<science::Events> given_events_;
};

}  // namespace binflow::apps
