#pragma once
// `binflow info`: where every rank of this launch runs (host, cpuset) and how many
// threads it got, per node the cores used against the cores available, and every
// warning of the thread budget. The first thing to run in a new job script.
#include <string>

#include "binflow/tool.hpp"

namespace binflow::apps {

class InfoTool final : public Tool {
public:
  static constexpr ToolInfo info{"info", "show ranks, cpusets and thread budgets of this launch"};
  InfoTool() : Tool(info) {}
  /// Runs no bins and writes no output file.
  [[nodiscard]] bool uses_bins() const override { return false; }
  [[nodiscard]] bool writes_outfile() const override { return false; }

  /// The placement as one JSON document: {"ranks": [...], "nodes": [...], "warnings": [...]}.
  [[nodiscard]] static std::string to_json(const Placement& placement);
  /// The placement as a table per rank, a line per node, then the warnings.
  [[nodiscard]] static std::string to_text(const Placement& placement);

protected:
  void declare(ParameterSet& params) override;
  /// Collective over ctx.runtime().comm; prints on rank 0 only.
  ToolOutput execute(RunContext& ctx) override;

private:
  bool json_ = false;
};

}  // namespace binflow::apps
