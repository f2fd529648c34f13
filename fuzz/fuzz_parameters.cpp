// ParameterSet::parse (framework/src/parameters.cpp), the parser of every tool's command
// line and --config file. The input is one word per line; a line "@config" (words
// `--config FILE`) or "@config=" (the word `config=FILE`) ends the words, and the rest of
// the input is the content of FILE. One parameter of each kind, declared as the tools do.
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "binflow/parameters.hpp"
#include "fuzz_common.hpp"

namespace {

struct Values {
  std::string text;
  std::string out = "result.h5";
  double ratio = 0.5;
  double optional_number = std::numeric_limits<double>::quiet_NaN();
  int count = 3;
  std::int64_t big = -7;
  std::uint64_t seed = 42;
  bool flag = false;
  std::string choice = "LIN";
  std::vector<std::int64_t> list;
  std::vector<std::string> trailing;
};

constexpr std::string_view target = "fuzz_parameters";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string config_file = binflow::fuzz::scratch_path("config.toml");
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> words;
  std::size_t at = 0;
  while (at <= input.size()) {
    const std::size_t end = std::min(input.find('\n', at), input.size());
    const std::string_view word = input.substr(at, end - at);
    at = end + 1;
    if (word == "@config" || word == "@config=") {
      const std::string_view content = at < input.size() ? input.substr(at) : std::string_view{};
      binflow::fuzz::write_file(config_file, reinterpret_cast<const std::uint8_t*>(content.data()),
                                content.size());
      if (word == "@config") {
        words.emplace_back("--config");
        words.push_back(config_file);
      } else {
        words.push_back("config=" + config_file);
      }
      break;
    }
    words.emplace_back(word);
  }

  Values v;
  binflow::ParameterSet set;
  set.add("text", v.text, "a text").input_file();
  set.add("out", v.out, "an output").output_file().launch_only();
  set.add("ratio", v.ratio, "a bounded number", binflow::Range<double>{0.0, 1.0});
  set.add("optional_number", v.optional_number, "NaN = from the input");
  set.add("count", v.count, "a bounded int", binflow::Range<int>{1, 100});
  set.add("big", v.big, "an int64");
  set.add("seed", v.seed, "a uint64");
  set.add("flag", v.flag, "a boolean");
  set.add_choice("choice", v.choice, {"LIN", "LOG", "FILE"}, "a choice");
  set.add_list("list", v.list, "a list");
  set.add_trailing("command", v.trailing, "words after --");

  binflow::fuzz::expect_usage_errors_only(target, [&] {
    set.parse(words);
    // What parse() promises about the values it accepts.
    binflow::fuzz::require(std::isfinite(v.ratio) && v.ratio >= 0.0 && v.ratio <= 1.0, target,
                           "ratio outside its range [0, 1] after a successful parse");
    binflow::fuzz::require(v.count >= 1 && v.count <= 100, target,
                           "count outside its range [1, 100] after a successful parse");
    binflow::fuzz::require(!set.given("optional_number") || std::isfinite(v.optional_number),
                           target, "a given number that is not finite");
    binflow::fuzz::require(v.choice == "LIN" || v.choice == "LOG" || v.choice == "FILE", target,
                           "choice not stored as one of the listed choices");
    static_cast<void>(set.values());
    static_cast<void>(set.values(binflow::ParameterSet::Which::results_only));
    static_cast<void>(set.paths());
  });
  return 0;
}
