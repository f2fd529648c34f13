// A complete binflow tool written against the installed public API only: Monte Carlo
// estimates of pi, one trial per bin. tests/e2e/test_example_package.py builds it with
// find_package(binflow) and runs it on 1, 2 and 3 ranks, so this file cannot rot.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "binflow/bin_context.hpp"
#include "binflow/bins.hpp"
#include "binflow/driver.hpp"
#include "binflow/executor.hpp"
#include "binflow/parallel.hpp"
#include "binflow/rng.hpp"
#include "binflow/table.hpp"
#include "binflow/tool.hpp"

namespace {

// Samples are counted in fixed blocks whose partial counts are added in block order:
// the pattern that keeps a floating-point sum independent of the thread count (for
// this integer count a reduction would do too).
constexpr std::int64_t block_samples = 4096;

// Sample j takes positions 2j and 2j+1 of the bin's stream, whichever thread draws it.
std::int64_t count_inside(const binflow::RngStream& rng, std::int64_t block, std::int64_t samples) {
  const std::int64_t first = block * block_samples;
  const std::int64_t last = std::min(samples, first + block_samples);
  std::int64_t inside = 0;
  for (std::int64_t j = first; j < last; ++j) {
    const double x = rng.uniform_at(2 * static_cast<std::uint64_t>(j));
    const double y = rng.uniform_at(2 * static_cast<std::uint64_t>(j) + 1);
    if (x * x + y * y < 1.0) ++inside;
  }
  return inside;
}

class PiTool final : public binflow::Tool {
public:
  static constexpr binflow::ToolInfo info{"pi", "Monte Carlo estimate of pi, one trial per bin"};
  PiTool() : Tool(info) {}

protected:
  void declare(binflow::ParameterSet& params) override {
    params.add("trials", trials_, "number of trials (bins)", binflow::Range<std::int64_t>{1, {}});
    params.add("samples", samples_, "random points drawn in each trial",
               binflow::Range<std::int64_t>{1, std::int64_t{1} << 40});
  }

  binflow::ToolOutput execute(binflow::RunContext& ctx) override {
    ctx.log().info("{} trials of {} samples", trials_, samples_);
    const binflow::Schema schema{
        {"inside", binflow::ColumnType::i64, "", "samples inside the unit quarter circle"},
        {"estimate", binflow::ColumnType::f64, "", "4 inside / samples"},
    };
    binflow::ToolOutput out = binflow::ToolOutput::from(
        ctx.map("trials", binflow::BinPlan::trials(trials_), schema,
                [this](binflow::BinContext& bin) { return run_trial(bin); }));
    if (ctx.is_root()) {
      // Summed in bin order, so the mean is the same on any number of ranks.
      double sum = 0.0;
      std::int64_t ok = 0;
      for (std::size_t row = 0; row < out.table.size(); ++row) {
        if (out.table.str(row, "status") != binflow::bin_status::ok) continue;
        sum += out.table.f64(row, "estimate");
        ++ok;
      }
      const double mean = ok > 0 ? sum / static_cast<double>(ok) : 0.0;
      out.attributes.emplace_back("mean_estimate", fmt::format("{:.17g}", mean));
      ctx.log().info("mean of {} trials: pi ~ {:.6f}", ok, mean);
    }
    return out;
  }

private:
  binflow::Row run_trial(binflow::BinContext& ctx) const {
    const binflow::RngStream& rng = ctx.rng();
    const std::int64_t samples = samples_;
    const std::int64_t blocks = (samples + block_samples - 1) / block_samples;
    // The bin's thread budget, blocks summed in block order (binflow/parallel.hpp).
    const std::int64_t inside = binflow::ordered_block_sum(
        ctx.budget().threads(), blocks,
        [&](std::int64_t block) { return count_inside(rng, block, samples); });
    const double estimate = 4.0 * static_cast<double>(inside) / static_cast<double>(samples);
    ctx.log().info("trial {}: {} of {} inside, pi ~ {:.6f}", ctx.bin().index, inside, samples,
                   estimate);
    return binflow::Row{inside, estimate};
  }

  std::int64_t trials_ = 64;
  std::int64_t samples_ = 100000;
};

}  // namespace

int main(int argc, char** argv) {
  binflow::ToolRegistry registry;
  registry.add<PiTool>();
  return binflow::run_main(argc, argv, registry);
}
