// Unit strings of DL3 files (TUNITn, keyword units): units::parse in apps/science/units.cpp,
// which answers std::nullopt for what it does not know and must never throw.
#include <cmath>
#include <cstdint>
#include <string_view>

#include "fuzz_common.hpp"
#include "science/units.hpp"

namespace {
constexpr std::string_view target = "fuzz_units";
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  binflow::fuzz::expect_usage_errors_only(target, [&] {
    const auto unit = binflow::science::units::parse(text);
    binflow::fuzz::require(!unit || std::isfinite(unit->factor), target,
                           "a unit with a non-finite scale factor");
  });
  return 0;
}
