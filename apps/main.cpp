// The `binflow` driver: one executable, one subcommand per tool, listed in this order by
// `binflow --help`; each tool's name and summary come from its ToolInfo.
#include "binflow/driver.hpp"
#include "tools/fit.hpp"
#include "tools/info.hpp"
#include "tools/lightcurve.hpp"
#include "tools/phasecurve.hpp"
#include "tools/pull.hpp"
#include "tools/report.hpp"
#include "tools/simulate.hpp"
#include "tools/spectrum.hpp"
#include "tools/submit.hpp"
#include "tools/synthetic.hpp"
#include "tools/tsdist.hpp"

int main(int argc, char** argv) {
  using namespace binflow::apps;
  binflow::ToolRegistry registry;
  registry.add<InfoTool>();
  registry.add<SyntheticTool>();
  registry.add<SimulateTool>();
  registry.add<LightcurveTool>();
  registry.add<FitTool>();
  registry.add<SpectrumTool>();
  registry.add<PhasecurveTool>();
  registry.add<SubmitTool>();
  registry.add<PullTool>();
  registry.add<TsdistTool>();
  registry.add<ReportTool>();
  return binflow::run_main(argc, argv, registry);
}
