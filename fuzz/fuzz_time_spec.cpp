// Time parameters (tmin, tmax, t_peak...): TimeSpec::parse and iso_to_mjd in
// apps/science/time_spec.cpp. The input is the parameter's text.
#include <cmath>
#include <cstdint>
#include <string_view>

#include "fuzz_common.hpp"
#include "science/time_spec.hpp"

namespace {
constexpr std::string_view target = "fuzz_time_spec";
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  binflow::fuzz::expect_usage_errors_only(target, [&] {
    const auto spec = binflow::science::TimeSpec::parse(text, "tmin");
    binflow::fuzz::require(!spec.given() || std::isfinite(spec.value()), target,
                           "a time that is not finite");
    static_cast<void>(spec.seconds(51544.5));
  });
  double mjd = 0.0;
  if (binflow::science::iso_to_mjd(text, mjd)) {
    binflow::fuzz::require(std::isfinite(mjd), target, "an ISO date with a non-finite MJD");
  }
  return 0;
}
