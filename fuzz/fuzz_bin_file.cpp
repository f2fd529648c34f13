// The bin files of tbinalg=FILE, ebinalg=FILE and phase bins (apps/science/binning.cpp over
// BinPlan::from_file, framework/src/bins.cpp): the input is the file, read on each axis.
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

#include "binflow/bins.hpp"
#include "fuzz_common.hpp"
#include "science/binning.hpp"

namespace {

constexpr std::string_view target = "fuzz_bin_file";

// What from_file promises about a plan it returns.
void check_plan(const binflow::BinPlan& plan) {
  const binflow::Axis& axis = plan.axis();
  binflow::fuzz::require(!plan.empty(), target, "an empty plan from a bin file");
  for (std::size_t i = 0; i < plan.size(); ++i) {
    const binflow::Bin& bin = plan[i];
    binflow::fuzz::require(bin.index == static_cast<std::int64_t>(i), target, "bin index");
    binflow::fuzz::require(std::isfinite(bin.lo) && std::isfinite(bin.hi) && bin.lo < bin.hi,
                           target, "a bin that is not a finite interval lo < hi");
    binflow::fuzz::require(bin.lo >= axis.min && bin.hi <= axis.max, target,
                           "a bin outside its axis");
    binflow::fuzz::require(!axis.min_exclusive || bin.lo > axis.min, target,
                           "a bin on the excluded lower limit of its axis");
    binflow::fuzz::require(i == 0 || bin.lo >= plan[i - 1].hi, target,
                           "bins that overlap or are out of order");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string path = binflow::fuzz::scratch_path("bins.txt");
  binflow::fuzz::write_file(path, data, size);
  using namespace binflow::science;
  binflow::fuzz::expect_usage_errors_only(target, [&] { check_plan(time_from_file(path)); });
  binflow::fuzz::expect_usage_errors_only(target, [&] { check_plan(energy_from_file(path)); });
  binflow::fuzz::expect_usage_errors_only(target, [&] { check_plan(phase_from_file(path)); });
  return 0;
}
