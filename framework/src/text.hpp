#pragma once
// Private: small text helpers shared by the parsers of the framework (bin files, launch
// environment variables).
#include <string_view>

namespace binflow::detail {

/// `text` without leading and trailing white space (blanks, tabs, CR, LF, VT, FF).
inline std::string_view trim(std::string_view text) {
  constexpr std::string_view blanks = " \t\r\n\v\f";
  const auto first = text.find_first_not_of(blanks);
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(blanks) - first + 1);
}

}  // namespace binflow::detail
