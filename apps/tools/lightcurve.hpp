#pragma once
// `binflow lightcurve`: the ctools cslightcrv of binflow. One likelihood fit per time
// bin (SCIENCE.md sections 2-3, 5); each rank reads only the events of its own bins.
#include <string>

#include "binflow/tool.hpp"
#include "science/event_file.hpp"
#include "science/likelihood.hpp"

namespace binflow::apps {

class LightcurveTool final : public Tool {
public:
  LightcurveTool() { reset(); }
  [[nodiscard]] std::string name() const override { return "lightcurve"; }
  [[nodiscard]] std::string summary() const override {
    return "light curve: a likelihood fit of flux, TS and upper limit per time bin";
  }
  [[nodiscard]] static Schema schema();

protected:
  void declare(ParameterSet& params) override;
  void reset() override;
  void validate() override;
  ToolOutput execute(RunContext& ctx) override;

private:
  [[nodiscard]] BinPlan make_plan(const science::Observation& obs) const;
  [[nodiscard]] science::FitSettings fit_settings(const science::Observation& obs) const;
  Row fit_time_bin(BinContext& bin, const science::EventFileReader& reader,
                   const science::BinFitter& fitter) const;

  std::string inobs_;
  std::string tbinalg_;
  double tmin_;
  double tmax_;
  std::int64_t tbins_;
  std::string tbinfile_;
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
};

}  // namespace binflow::apps
