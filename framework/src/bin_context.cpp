#include "binflow/bin_context.hpp"

#include <fmt/format.h>

#include "binflow/error.hpp"
#include "binflow/tool.hpp"

namespace binflow {

ToolOutput BinContext::invoke(Tool& tool, const std::vector<std::string>& args, int threads) {
  return guarded(tool, [&] {
    tool.configure(args);
    return run_nested(tool, threads);
  });
}

// Bad input of a nested tool is this bin's failure, not bad input of the whole run.
ToolOutput BinContext::guarded(Tool& tool, const std::function<ToolOutput()>& run) {
  try {
    return run();
  } catch (const UsageError& e) {
    throw Error(fmt::format("nested {}: {}", tool.name(), e.what()));
  } catch (const AgreedError& e) {
    throw Error(fmt::format("nested {}: {}", tool.name(), e.what()));
  }
}

ToolOutput BinContext::run_nested(Tool& tool, int threads) {
  const std::uint64_t derived = rng_.derive_seed(invocations_++);
  if (!tool.seed_given()) tool.set_seed(derived);
  // The nested run's text becomes lines of this bin's block, indented one level more.
  LogTarget into_bin = [this](std::string_view text) {
    while (!text.empty()) {
      const auto eol = text.find('\n');
      log_.info("{}", text.substr(0, eol));
      text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);
    }
  };
  RunContext child(Runtime::self(), ThreadBudget::nested(threads),
                   tool.standard().run_settings(memory_limit_), std::move(into_bin), nullptr, true);
  const ThreadBudgetScope scope(child.budget());
  return tool.run(child);
}

}  // namespace binflow
