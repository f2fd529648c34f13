// The `binflow` driver: one executable, one subcommand per tool.
#include "binflow/tool.hpp"
#include "tools/fit.hpp"
#include "tools/info.hpp"
#include "tools/lightcurve.hpp"
#include "tools/phasecurve.hpp"
#include "tools/pull.hpp"
#include "tools/simulate.hpp"
#include "tools/spectrum.hpp"
#include "tools/submit.hpp"
#include "tools/synthetic.hpp"
#include "tools/tsdist.hpp"

int main(int argc, char** argv) {
  binflow::ToolRegistry registry;
  registry.add("info", "show ranks, cpusets and thread budgets of this launch",
               [] { return std::make_unique<binflow::apps::InfoTool>(); });
  registry.add("synthetic", "framework exercise: bins with configurable cost, logs and failures",
               [] { return std::make_unique<binflow::apps::SyntheticTool>(); });
  registry.add("simulate", "simulate an event file: point source plus background on an observation's GTIs",
               [] { return std::make_unique<binflow::apps::SimulateTool>(); });
  registry.add("lightcurve", "light curve: a likelihood fit of flux, TS and upper limit per time bin",
               [] { return std::make_unique<binflow::apps::LightcurveTool>(); });
  registry.add("fit", "one likelihood fit of a selection: N0, beta (and gamma), errors, flux, TS and upper limit",
               [] { return std::make_unique<binflow::apps::FitTool>(); });
  registry.add("spectrum", "spectral points: a global fit, then N0 and beta per energy bin with the index fixed",
               [] { return std::make_unique<binflow::apps::SpectrumTool>(); });
  registry.add("phasecurve", "phase curve: a likelihood fit of flux, TS and upper limit per pulse-phase bin",
               [] { return std::make_unique<binflow::apps::PhasecurveTool>(); });
  registry.add("submit", "write a Slurm, PBS or LSF job script for a binflow run and submit it",
               [&registry] { return std::make_unique<binflow::apps::SubmitTool>(registry); });
  registry.add("pull", "pull distribution: simulate and fit a known model in every trial (ctools cspull)",
               [] { return std::make_unique<binflow::apps::PullTool>(); });
  registry.add("tsdist", "TS distribution of background-only trials (ctools cstsdist)",
               [] { return std::make_unique<binflow::apps::TsdistTool>(); });
  return binflow::run_main(argc, argv, registry);
}
