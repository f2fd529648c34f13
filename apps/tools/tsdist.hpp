#pragma once
// `binflow tsdist`: the ctools cstsdist of binflow. Background-only Monte Carlo trials (true
// N0 = 0), each fitted with the source free (N0 >= 0); the distribution of the test
// statistic is compared with its asymptotic form, half a chi^2 with one degree of freedom
// (Chernoff: N0 sits on its bound), so P(TS > 2.706) = 0.05 (SCIENCE.md section 6). Trials
// run as `binflow pull`'s do (see pull.hpp): a nested simulate and fit, or on DL3 input a
// draw inside the region of interest and a fit shared by all trials.
#include <cstdint>
#include <string>

#include "binflow/tool.hpp"
#include "tools/pull.hpp"

namespace binflow::apps {

/// P(TS > threshold) for TS distributed as half chi^2(1 dof) plus half a point mass at 0:
/// 0.5 erfc(sqrt(threshold / 2)).
double half_chi2_tail(double threshold);

class TsdistTool final : public Tool {
public:
  static constexpr ToolInfo info{"tsdist",
                                 "TS distribution of background-only trials (ctools cstsdist)"};
  TsdistTool() : Tool(info) {}
  [[nodiscard]] static Schema schema();
  [[nodiscard]] std::vector<TextColumn> console_view() const override;

protected:
  void declare(ParameterSet& params) override;
  void validate() override;
  /// Collective over ctx.runtime().comm: maps the trials, then (rank 0) the summary.
  ToolOutput execute(RunContext& ctx) override;

private:
  /// True N0 = 0, and no upper limits.
  static TrialSetup background_only();

  TrialSetup setup_ = background_only();
};

}  // namespace binflow::apps
