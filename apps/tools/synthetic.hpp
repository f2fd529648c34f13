#pragma once
// `binflow synthetic`: bins with a configurable cost, log volume and failures, for
// tests, demos and benchmarks of the framework alone. Each bin's result is computed
// from its own random stream, so it is the same on any number of ranks and threads.
#include <cstdint>
#include <string>
#include <vector>

#include "binflow/tool.hpp"

namespace binflow::apps {

class SyntheticTool final : public Tool {
public:
  static constexpr ToolInfo info{
      "synthetic", "framework exercise: bins with configurable cost, logs and failures"};
  SyntheticTool() : Tool(info) {}

  /// The per-bin work, public so that tests and benchmarks can call it directly.
  Row run_bin(BinContext& ctx) const;
  [[nodiscard]] static Schema schema();

protected:
  void declare(ParameterSet& params) override;
  void validate() override;
  ToolOutput execute(RunContext& ctx) override;

private:
  [[nodiscard]] double draw_cost_ms(RngStream& rng) const;

  std::int64_t bins_ = 100;
  double cost_ms_ = 1.0;
  std::string cost_dist_ = "const";
  double cost_sigma_ = 1.0;
  bool omp_work_ = false;
  std::int64_t draws_ = 4096;
  int log_lines_ = 1;
  std::vector<std::int64_t> fail_bins_;
  int abort_rank_ = -1;
};

}  // namespace binflow::apps
