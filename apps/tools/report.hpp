#pragma once
// `binflow report OUTPUT.h5 [html=report.html]`: the report page of an output file, one
// self-contained HTML file (framework/include/binflow/report_page.hpp) with the tool's result
// plot, the run's timeline, per-rank time and memory, and the parameters.
#include <string>

#include "binflow/tool.hpp"

namespace binflow::apps {

class ReportTool final : public Tool {
public:
  static constexpr ToolInfo info{"report",
                                 "write the HTML report (plots, timeline) of an output file"};
  ReportTool() : Tool(info) {}
  /// Runs no bins; writes its page itself (the parameter html), not an outfile.
  [[nodiscard]] bool uses_bins() const override { return false; }
  [[nodiscard]] bool writes_outfile() const override { return false; }

protected:
  void declare(ParameterSet& params) override;
  void validate() override;
  /// Rank 0 writes the page; other ranks do nothing.
  ToolOutput execute(RunContext& ctx) override;

private:
  [[nodiscard]] std::string html_path() const;

  std::string infile_;
  std::string html_;
  bool clobber_ = false;
  double ts_threshold_ = 4.0;
};

}  // namespace binflow::apps
