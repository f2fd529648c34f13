#pragma once
// The message of the UsageError that `fn` throws, or "" when it throws none: how the unit
// tests check that bad input is refused with a line naming what is wrong.
#include <functional>
#include <string>

#include "binflow/error.hpp"

namespace binflow::testing_support {

inline std::string usage_message(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

}  // namespace binflow::testing_support
