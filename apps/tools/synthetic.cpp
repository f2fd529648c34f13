#include "tools/synthetic.hpp"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "binflow/bin_context.hpp"
#include "binflow/error.hpp"

namespace binflow::apps {

namespace {

// Draws are summed in fixed blocks whose partial sums are added in block order, so
// the sum is bit-identical for any number of OpenMP threads.
constexpr std::int64_t block_draws = 256;

void spin_for(double seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
  }
}

double block_sum(const RngStream& rng, std::int64_t block, std::int64_t draws) {
  const std::int64_t first = block * block_draws;
  const std::int64_t last = std::min(draws, first + block_draws);
  double sum = 0.0;
  for (std::int64_t j = first; j < last; ++j) sum += rng.uniform_at(static_cast<std::uint64_t>(j));
  return sum;
}

}  // namespace

void SyntheticTool::declare(ParameterSet& params) {
  params.add("bins", bins_, "number of bins", Range<std::int64_t>{1, std::int64_t{1} << 40});
  params.add("cost_ms", cost_ms_, "mean cost of one bin in milliseconds of busy work",
             Range<double>{0.0, 3.6e6});
  params.add_choice("cost_dist", cost_dist_, {"const", "uniform", "lognormal"},
                    "distribution of bin costs around cost_ms (uniform on [0, 2 cost_ms]; "
                    "lognormal with mean cost_ms and log-width cost_sigma)");
  params.add("cost_sigma", cost_sigma_, "log-width of the lognormal cost distribution",
             Range<double>{0.0, 5.0});
  params.add("omp_work", omp_work_,
             "do each bin's work in an OpenMP loop over the rank's thread budget");
  params.add("draws", draws_, "random numbers summed into each bin's value",
             Range<std::int64_t>{0, std::int64_t{1} << 32});
  params.add("log_lines", log_lines_, "lines each bin writes to its log block",
             Range<int>{0, 1000000});
  params.add_list("fail_bins", fail_bins_, "indices of bins that throw (to test failure handling)");
  params.add("abort_rank", abort_rank_,
             "rank that throws outside any bin, before the bins start (to test that the "
             "whole job stops with one message instead of hanging); -1 = none",
             Range<int>{-1, {}});
}

void SyntheticTool::validate() {
  for (const std::int64_t b : fail_bins_) {
    if (b < 0 || b >= bins_) {
      throw UsageError(fmt::format("fail_bins: bin {} is outside 0..{}", b, bins_ - 1));
    }
  }
}

Schema SyntheticTool::schema() {
  return Schema{
      {"cost", ColumnType::f64, "ms", "busy work of the bin, drawn from its stream"},
      {"value", ColumnType::f64, "", "sum of the bin's uniform draws"},
      {"first_draw", ColumnType::i64, "", "first 64-bit draw of the bin's stream (as signed)"},
      {"label", ColumnType::str, "", "text label of the bin"},
  };
}

double SyntheticTool::draw_cost_ms(RngStream& rng) const {
  if (cost_dist_ == "uniform") return 2.0 * cost_ms_ * rng.uniform();
  if (cost_dist_ == "lognormal") {
    return cost_ms_ * std::exp(cost_sigma_ * rng.normal() - 0.5 * cost_sigma_ * cost_sigma_);
  }
  return cost_ms_;
}

Row SyntheticTool::run_bin(BinContext& ctx) const {
  const std::int64_t index = ctx.bin().index;
  RngStream& rng = ctx.rng();
  const auto first = static_cast<std::int64_t>(rng());
  const double cost = draw_cost_ms(rng);
  if (std::binary_search(fail_bins_.begin(), fail_bins_.end(), index)) {
    throw std::runtime_error(fmt::format("bin {} fails on purpose (fail_bins)", index));
  }
  // Draws continue the stream from a fixed offset, whatever the cost distribution used.
  const RngStream draws_stream(rng.derive_seed(1), static_cast<std::uint64_t>(index));
  const std::int64_t blocks = (draws_ + block_draws - 1) / block_draws;
  std::vector<double> partial(static_cast<std::size_t>(blocks), 0.0);
  const std::int64_t draws = draws_;
  if (omp_work_) {
    const double seconds = cost * 1e-3;
#pragma omp parallel default(none) shared(partial, draws_stream, blocks, draws, seconds)
    {
      spin_for(seconds / omp_get_num_threads());
#pragma omp for schedule(static)
      for (std::int64_t b = 0; b < blocks; ++b) {
        partial[static_cast<std::size_t>(b)] = block_sum(draws_stream, b, draws);
      }
    }
  } else {
    spin_for(cost * 1e-3);
    for (std::int64_t b = 0; b < blocks; ++b) {
      partial[static_cast<std::size_t>(b)] = block_sum(draws_stream, b, draws);
    }
  }
  double value = 0.0;
  for (const double p : partial) value += p;
  for (int k = 0; k < log_lines_; ++k) {
    ctx.log().info("line {} of bin {}: draw {:.17g}", k, index,
                   draws_stream.uniform_at(static_cast<std::uint64_t>(k)));
  }
  return Row{cost, value, first, fmt::format("bin-{}", index)};
}

ToolOutput SyntheticTool::execute(RunContext& ctx) {
  std::sort(fail_bins_.begin(), fail_bins_.end());
  if (abort_rank_ == ctx.runtime().rank()) {
    throw IoError(
        fmt::format("rank {} fails outside any bin on purpose (abort_rank)", abort_rank_));
  }
  const BinPlan plan = BinPlan::trials(bins_);
  ctx.log().info("{} bins, cost {} ms ({}), {} draws, {} log lines per bin", bins_, cost_ms_,
                 cost_dist_, draws_, log_lines_);
  MapResult result =
      ctx.map("bins", plan, schema(), [this](BinContext& bin) { return run_bin(bin); });
  return ToolOutput::from(std::move(result));
}

}  // namespace binflow::apps
