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
#include <vector>

#include "binflow/tool.hpp"
#include "science/likelihood.hpp"
#include "tools/analysis.hpp"
#include "tools/fits_results.hpp"

namespace binflow::apps {

class FitTool final : public Tool {
public:
  static constexpr ToolInfo info{
      "fit",
      "one likelihood fit of a selection: N0, beta (and gamma), errors, flux, TS and upper limit"};

  /// A nested fit's typed request (BinContext::call): the analysis parameters, and
  /// optionally the events to fit in memory (with their observation: GTIs, deadtime,
  /// response, pointing) instead of reading `analysis.inobs`, which may then be empty.
  struct Request {
    AnalysisParameters analysis;
    std::optional<science::Observation> observation;
    std::optional<science::Events> events;
  };
  /// A nested fit's typed result: the fit (status bin_status::ok, empty, or failed with the
  /// message when the fit threw) and the thread budget its bin ran with.
  struct Result {
    science::FitResult fit;
    int threads = 1;
  };

  FitTool() : Tool(info) {}
  /// Columns of the one-row /results table (time range, energy range, then the science
  /// columns of lightcurve).
  [[nodiscard]] static Schema schema();

  /// For BinContext::call: the request becomes the tool's parameters and in-memory input.
  void apply(Request request);
  [[nodiscard]] static Result result_of(const ToolOutput& out);

  /// The one row as a FITS table, HDU FIT.
  [[nodiscard]] bool writes_fits() const override { return true; }
  void write_fits(const std::string& path, const ToolOutput& out,
                  const RunProvenance& provenance) const override;
  [[nodiscard]] std::vector<TextColumn> console_view() const override;

protected:
  void declare(ParameterSet& params) override;
  void validate() override;
  /// Collective over ctx.runtime().comm: a one-bin map (ordered log, status, checkpoint).
  ToolOutput execute(RunContext& ctx) override;

private:
  /// The events of the region of interest in [t0, t1) for `settings`, read within `memory`.
  using RoiSource = std::function<science::RoiEvents(
      double t0, double t1, const science::FitSettings&, const MemoryLimit& memory)>;
  /// The one-bin map over the selection [t0, t1).
  ToolOutput fit(RunContext& ctx, std::pair<double, double> selection,
                 const science::BinFitter& fitter, const RoiSource& roi_of) const;

  AnalysisParameters analysis_;

  // The time axis of what the last run read, for its FITS output (set by execute).
  FitsTimeReference observed_;
  // Not parameters: set by apply() for the next run only.
  std::optional<science::Observation> given_observation_;
  std::optional<science::Events> given_events_;
};

}  // namespace binflow::apps
