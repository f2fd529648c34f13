#pragma once
// `binflow lightcurve`: the ctools cslightcrv of binflow. One likelihood fit per time
// bin (SCIENCE.md sections 2-3, 5, 7); each rank reads only the events of its own bins,
// from an HDF5 event file or the DL3 observations each bin overlaps.
#include <string>
#include <vector>

#include "binflow/tool.hpp"
#include "science/likelihood.hpp"
#include "tools/analysis.hpp"
#include "tools/analysis_input.hpp"
#include "tools/fits_results.hpp"

namespace binflow::apps {

class LightcurveTool final : public Tool {
public:
  static constexpr ToolInfo info{
      "lightcurve", "light curve: a likelihood fit of flux, TS and upper limit per time bin"};
  LightcurveTool() : Tool(info) {}
  [[nodiscard]] static Schema schema();

  /// GADF light curve (FluxPoints.read(path, format="lightcurve")), HDU LIGHTCURVE.
  [[nodiscard]] bool writes_fits() const override { return true; }
  void write_fits(const std::string& path, const ToolOutput& out,
                  const RunProvenance& provenance) const override;
  [[nodiscard]] std::vector<TextColumn> console_view() const override;

protected:
  void declare(ParameterSet& params) override;
  void validate() override;
  ToolOutput execute(RunContext& ctx) override;

private:
  [[nodiscard]] BinPlan make_plan(const AnalysisInput& input) const;
  Row fit_time_bin(BinContext& bin, const AnalysisInput& input,
                   const science::BinFitter& fitter) const;

  AnalysisParameters analysis_;
  std::string tbinalg_ = "LIN";
  std::int64_t tbins_ = 20;
  std::string tbinfile_;
  // The time axis of what the last run read, for its FITS output (set by execute).
  FitsTimeReference observed_;
};

}  // namespace binflow::apps
