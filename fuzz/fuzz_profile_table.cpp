// simulate's profile_file (profile=table): TimeProfile::from_file in
// apps/science/simulate.cpp. The input is the file; an accepted table is evaluated.
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "fuzz_common.hpp"
#include "science/simulate.hpp"

namespace {
constexpr std::string_view target = "fuzz_profile_table";
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string path = binflow::fuzz::scratch_path("profile.txt");
  binflow::fuzz::write_file(path, data, size);
  binflow::fuzz::expect_usage_errors_only(target, [&] {
    const auto profile = binflow::science::TimeProfile::from_file(path);
    // f >= 0 everywhere (the header's promise), at the ends, beyond them and in between.
    for (const double t : {-1e300, -1.0, 0.0, 0.5, 1.0, 1e3, 1e9, 1e300}) {
      const double f = profile(t);
      binflow::fuzz::require(std::isfinite(f) && f >= 0.0, target, "f(t) not finite or < 0");
      static_cast<void>(profile.integral(t, t + 1.0));
      static_cast<void>(profile.max(t, t + 1.0));
    }
  });
  return 0;
}
