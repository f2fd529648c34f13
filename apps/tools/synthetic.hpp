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
  SyntheticTool() { reset(); }
  [[nodiscard]] std::string name() const override { return "synthetic"; }
  [[nodiscard]] std::string summary() const override {
    return "framework exercise: bins with configurable cost, logs and failures";
  }

  /// The per-bin work, public so that tests and benchmarks can call it directly.
  Row run_bin(BinContext& ctx) const;
  [[nodiscard]] static Schema schema();

protected:
  void declare(ParameterSet& params) override;
  void reset() override;
  void validate() override;
  ToolOutput execute(RunContext& ctx) override;

private:
  [[nodiscard]] double draw_cost_ms(RngStream& rng) const;

  std::int64_t bins_;
  double cost_ms_;
  std::string cost_dist_;
  double cost_sigma_;
  bool omp_work_;
  std::int64_t draws_;
  int log_lines_;
  std::vector<std::int64_t> fail_bins_;
  int abort_rank_;
};

}  // namespace binflow::apps
