#include "binflow/parameters.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "binflow/error.hpp"

namespace binflow {

namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

template <class T>
std::string show(const T& value) {
  if constexpr (std::is_same_v<T, std::string>) {
    return value;
  } else if constexpr (std::is_same_v<T, bool>) {
    return value ? "yes" : "no";
  } else {
    return fmt::format("{}", value);  // doubles: the shortest text that reads back the same
  }
}

template <class T>
std::string range_text(const Range<T>& range) {
  if (range.min && range.max) return fmt::format("[{}, {}]", show(*range.min), show(*range.max));
  if (range.min) return fmt::format(">= {}", show(*range.min));
  if (range.max) return fmt::format("<= {}", show(*range.max));
  return {};
}

bool is_identifier(std::string_view text) {
  if (text.empty() || std::isdigit(static_cast<unsigned char>(text[0]))) return false;
  return std::all_of(text.begin(), text.end(),
                     [](unsigned char c) { return std::isalnum(c) || c == '_'; });
}

}  // namespace

struct ParameterSet::Impl {
  struct Param {
    std::string name;
    std::string type;
    std::string default_text;
    std::string range;
    std::string help;
    bool is_flag = false;
    bool launch_only = false;
    PathRole path_role = PathRole::none;
    CLI::Option* option = nullptr;
    std::function<void()> restore;  // back to the value at declaration
    std::function<std::string()> current;
    std::function<void()> finish;  // post-parse conversion and range check
  };

  Impl() : app("binflow tool") {
    app.set_help_flag();
    app.allow_windows_style_options(false);
    config = app.set_config("--config", "", "TOML file of key = value parameters");
    // A key that names no parameter is the same error in a config file as on the command line.
    app.allow_config_extras(CLI::config_extras_mode::error);
  }

  Param& add(const std::string& name, std::string type, std::string help) {
    if (!is_identifier(name)) throw InternalError(fmt::format("bad parameter name '{}'", name));
    Param p;
    p.name = name;
    p.type = std::move(type);
    p.help = std::move(help);
    params.push_back(std::move(p));
    return params.back();
  }

  [[nodiscard]] const Param* find(std::string_view name) const {
    for (const Param& p : params) {
      if (p.name == name) return &p;
    }
    return nullptr;
  }

  // `key=value` words become `--key=value`, unless the word is the value of the option
  // before it (`--logfile a=b.log`) or names no parameter.
  std::vector<std::string> normalise(const std::vector<std::string>& args) const {
    std::vector<std::string> out;
    bool value_expected = false;
    const Param* positional_param = positional ? &params[*positional] : nullptr;
    bool positional_taken = positional_param == nullptr;
    for (const std::string& word : args) {
      const auto eq = word.find('=');
      if (!value_expected && word.rfind('-', 0) != 0 && eq != std::string::npos &&
          (find(word.substr(0, eq)) != nullptr || word.substr(0, eq) == "config")) {
        const Param* p = find(word.substr(0, eq));
        if (p != nullptr && p->is_flag) {
          out.push_back("--" + word);
        } else {
          out.push_back("--" + word.substr(0, eq));
          out.push_back(word.substr(eq + 1));  // may be empty: `fail_bins=` clears a list
        }
        value_expected = false;
        continue;
      }
      if (word.rfind("--", 0) == 0 && eq != std::string::npos && eq + 1 == word.size()) {
        out.push_back(word.substr(0, eq));  // `--fail_bins=` likewise
        out.push_back("");
        continue;
      }
      // `--flag yes` (the `--name value` form) for a boolean: `--flag=yes` to CLI11.
      if (!out.empty() && is_bool_word(word) && out.back().rfind("--", 0) == 0 &&
          out.back().find('=') == std::string::npos && !value_expected) {
        const Param* flag = find(out.back().substr(2));
        if (flag != nullptr && flag->is_flag) {
          out.back() += "=" + word;
          continue;
        }
      }
      if (!value_expected && !positional_taken && word.rfind('-', 0) != 0) {
        out.push_back("--" + positional_param->name);
        out.push_back(word);
        positional_taken = true;
        continue;
      }
      out.push_back(word);
      value_expected = false;
      if (word.rfind("--", 0) == 0 && word.find('=') == std::string::npos) {
        const Param* p = find(word.substr(2));
        value_expected = word == "--config" || (p != nullptr && !p->is_flag);
      }
    }
    return out;
  }

  static bool is_bool_word(std::string_view word) {
    const std::string w = lower(word);
    return w == "yes" || w == "no" || w == "true" || w == "false" || w == "on" || w == "off" ||
           w == "1" || w == "0";
  }

  CLI::App app;
  CLI::Option* config = nullptr;
  std::vector<Param> params;
  std::optional<std::size_t> positional;  // index into params
  std::vector<std::string>* trailing = nullptr;
  std::string trailing_name;
  std::string trailing_help;
  std::vector<std::string> string_storage;
};

ParameterSet::ParameterSet() : impl_(std::make_unique<Impl>()) {}
ParameterSet::ParameterSet(ParameterSet&&) noexcept = default;
ParameterSet& ParameterSet::operator=(ParameterSet&&) noexcept = default;
ParameterSet::~ParameterSet() = default;

ParameterSet& ParameterSet::add(const std::string& name, std::string& value,
                                const std::string& help) {
  auto& p = impl_->add(name, "TEXT", help);
  p.default_text = value.empty() ? "(none)" : value;
  p.option = impl_->app.add_option("--" + name, value, help);
  p.current = [&value] { return value; };
  p.restore = [&value, initial = value] { value = initial; };
  return *this;
}

template <class T>
void ParameterSet::add_number(const std::string& name, T& value, const std::string& help,
                              Range<T> range, const char* type) {
  auto& p = impl_->add(name, type, help);
  p.default_text = show(value);
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(value)) p.default_text = "(none)";
  }
  p.range = range_text(range);
  p.option = impl_->app.add_option("--" + name, value, help);
  p.current = [&value] { return show(value); };
  p.restore = [&value, initial = value] { value = initial; };
  p.finish = [&value, range, name, option = p.option] {
    if (option->count() == 0)
      return;  // defaults are the tool's own (NaN may mean "from the input")
    // CLI11 wraps "-1" into a huge unsigned value instead of refusing it.
    if constexpr (std::is_unsigned_v<T>) {
      for (const std::string& word : option->results()) {
        if (word.find('-') != std::string::npos) {
          throw UsageError(fmt::format("{}: '{}' is not a non-negative integer", name, word));
        }
      }
    }
    if constexpr (std::is_floating_point_v<T>) {
      if (!std::isfinite(value))
        throw UsageError(fmt::format("{}: {} is not a finite number", name, value));
    }
    if ((range.min && value < *range.min) || (range.max && value > *range.max)) {
      throw UsageError(fmt::format("{}: {} is outside the allowed range {}", name, show(value),
                                   range_text(range)));
    }
  };
}

ParameterSet& ParameterSet::add(const std::string& name, double& value, const std::string& help,
                                Range<double> range) {
  add_number(name, value, help, range, "FLOAT");
  return *this;
}

ParameterSet& ParameterSet::add(const std::string& name, int& value, const std::string& help,
                                Range<int> range) {
  add_number(name, value, help, range, "INT");
  return *this;
}

ParameterSet& ParameterSet::add(const std::string& name, std::int64_t& value,
                                const std::string& help, Range<std::int64_t> range) {
  add_number(name, value, help, range, "INT");
  return *this;
}

ParameterSet& ParameterSet::add(const std::string& name, std::uint64_t& value,
                                const std::string& help) {
  add_number(name, value, help, Range<std::uint64_t>{}, "UINT");
  return *this;
}

ParameterSet& ParameterSet::add(const std::string& name, bool& value, const std::string& help) {
  auto& p = impl_->add(name, "BOOL", help);
  p.default_text = show(value);
  p.is_flag = true;
  p.option = impl_->app.add_flag("--" + name, value, help);
  p.current = [&value] { return show(value); };
  p.restore = [&value, initial = value] { value = initial; };
  return *this;
}

ParameterSet& ParameterSet::add_choice(const std::string& name, std::string& value,
                                       std::vector<std::string> choices, const std::string& help) {
  auto& p = impl_->add(name, "CHOICE", help);
  p.default_text = value;
  p.range = fmt::format("{}", fmt::join(choices, "|"));
  p.option = impl_->app.add_option("--" + name, value, help);
  p.current = [&value] { return value; };
  p.restore = [&value, initial = value] { value = initial; };
  p.finish = [&value, choices = std::move(choices), name] {
    for (const std::string& c : choices) {
      if (lower(c) == lower(value)) {
        value = c;
        return;
      }
    }
    throw UsageError(
        fmt::format("{}: '{}' is not one of {}", name, value, fmt::join(choices, ", ")));
  };
  return *this;
}

ParameterSet& ParameterSet::add_list(const std::string& name, std::vector<std::int64_t>& value,
                                     const std::string& help) {
  auto& p = impl_->add(name, "LIST", help);
  p.default_text = value.empty() ? "(none)" : fmt::format("{}", fmt::join(value, ","));
  auto text = std::make_shared<std::string>(fmt::format("{}", fmt::join(value, ",")));
  p.option = impl_->app.add_option("--" + name, *text, help);
  p.current = [&value] { return fmt::format("{}", fmt::join(value, ",")); };
  p.restore = [&value, text, initial = value, initial_text = *text] {
    value = initial;
    *text = initial_text;
  };
  p.finish = [&value, text, name] {
    value.clear();
    std::string_view rest = *text;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      const std::string_view item = rest.substr(0, comma);
      std::int64_t number = 0;
      const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), number);
      if (ec != std::errc{} || end != item.data() + item.size()) {
        throw UsageError(
            fmt::format("{}: '{}' is not a comma-separated list of integers", name, *text));
      }
      value.push_back(number);
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    }
  };
  return *this;
}

ParameterSet& ParameterSet::add_trailing(const std::string& name, std::vector<std::string>& words,
                                         const std::string& help) {
  impl_->trailing = &words;
  impl_->trailing_name = name;
  impl_->trailing_help = help;
  return *this;
}

ParameterSet& ParameterSet::launch_only() {
  if (impl_->params.empty()) throw InternalError("launch_only() before any parameter");
  impl_->params.back().launch_only = true;
  return *this;
}

ParameterSet& ParameterSet::input_file(bool directory_allowed) {
  if (impl_->params.empty() || impl_->params.back().type != "TEXT")
    throw InternalError("input_file() after a parameter that is not text");
  impl_->params.back().path_role =
      directory_allowed ? PathRole::input_file_or_directory : PathRole::input_file;
  return *this;
}

ParameterSet& ParameterSet::output_file() {
  if (impl_->params.empty() || impl_->params.back().type != "TEXT")
    throw InternalError("output_file() after a parameter that is not text");
  impl_->params.back().path_role = PathRole::output_file;
  return *this;
}

ParameterSet& ParameterSet::positional() {
  if (impl_->params.empty()) throw InternalError("positional() before any parameter");
  impl_->positional = impl_->params.size() - 1;
  return *this;
}

void ParameterSet::restore_defaults() {
  for (const auto& p : impl_->params) p.restore();
  if (impl_->trailing != nullptr) impl_->trailing->clear();
}

namespace {

// The config file as strictly as the command line: every line that is not blank or a
// comment is `name = value` with a non-empty value (a TOML string, number, boolean or bare
// word); CLI11's reader would skip or guess at anything else.
void check_config_file(const std::string& path,
                       const std::function<bool(std::string_view)>& is_parameter) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw UsageError(fmt::format("config: '{}' is not a readable file", path));
  }
  std::ifstream in(path);
  if (!in) throw UsageError(fmt::format("config: cannot open '{}'", path));
  std::string line;
  for (std::size_t number = 1; std::getline(in, line); ++number) {
    std::string_view text(line);
    // '#' starts a comment anywhere on the line, as in CLI11's reader.
    text = text.substr(0, text.find('#'));
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())) != 0) {
      text.remove_suffix(1);
    }
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())) != 0) {
      text.remove_prefix(1);
    }
    if (text.empty()) continue;
    const auto eq = text.find('=');
    std::string_view key = text.substr(0, eq);
    while (!key.empty() && std::isspace(static_cast<unsigned char>(key.back())) != 0) {
      key.remove_suffix(1);
    }
    std::string_view value =
        eq == std::string_view::npos ? std::string_view{} : text.substr(eq + 1);
    while (!value.empty() && std::isspace(static_cast<unsigned char>(value.front())) != 0) {
      value.remove_prefix(1);
    }
    if (eq == std::string_view::npos || !is_identifier(key)) {
      throw UsageError(fmt::format("{}:{}: expected 'name = value', got '{}'", path, number, text));
    }
    if (value.empty()) throw UsageError(fmt::format("{}:{}: {} has no value", path, number, key));
    if (!is_parameter(key)) {
      throw UsageError(fmt::format("{}:{}: unknown parameter '{}'", path, number, key));
    }
  }
}

// The config file named by normalised words ("--config" PATH or "--config=PATH").
std::optional<std::string> config_path(const std::vector<std::string>& words) {
  for (std::size_t i = 0; i < words.size(); ++i) {
    if (words[i] == "--config" && i + 1 < words.size()) return words[i + 1];
    if (words[i].rfind("--config=", 0) == 0) return words[i].substr(9);
  }
  return std::nullopt;
}

}  // namespace

void ParameterSet::parse(const std::vector<std::string>& args) {
  restore_defaults();
  auto own_end = args.end();
  if (impl_->trailing != nullptr) {
    own_end = std::find(args.begin(), args.end(), "--");
    impl_->trailing->assign(own_end == args.end() ? args.end() : own_end + 1, args.end());
  }
  std::vector<std::string> words = impl_->normalise({args.begin(), own_end});
  if (const std::optional<std::string> config = config_path(words)) {
    check_config_file(*config,
                      [this](std::string_view key) { return impl_->find(key) != nullptr; });
  }
  std::reverse(words.begin(), words.end());  // CLI11 takes the vector back to front
  try {
    impl_->app.parse(words);
  } catch (const CLI::ParseError& e) {
    std::string text = e.what();
    if (text.find("were not expected") != std::string::npos ||
        text.find("not expected") != std::string::npos) {
      throw UsageError(fmt::format("unknown parameter or stray word: {}", text));
    }
    throw UsageError(text);
  }
  for (const auto& p : impl_->params) {
    if (p.finish) p.finish();
  }
}

bool ParameterSet::given(const std::string& name) const {
  const auto* p = impl_->find(name);
  return p != nullptr && p->option->count() > 0;
}

std::string ParameterSet::help(std::string_view tool, std::string_view summary) const {
  std::string usage(tool);
  if (const std::optional<std::size_t> positional = impl_->positional) {
    usage += fmt::format(" [{}]", impl_->params[*positional].name);
  }
  std::string out = fmt::format(
      "binflow {}: {}\n\nusage: binflow {} [--name value | --name=value | name=value]... "
      "[--config file.toml]{}\n\nparameters:\n",
      tool, summary, usage,
      impl_->trailing != nullptr ? fmt::format(" -- {}...", impl_->trailing_name) : std::string());
  for (const auto& p : impl_->params) {
    std::string detail = fmt::format("default {}", p.default_text);
    if (!p.range.empty())
      detail += fmt::format("; {} {}", p.type == "CHOICE" ? "one of" : "range", p.range);
    out += fmt::format("  --{} {}  [{}]\n      {}\n", p.name, p.type, detail, p.help);
  }
  if (impl_->trailing != nullptr) {
    out += fmt::format("  -- {}...\n      {}\n", impl_->trailing_name, impl_->trailing_help);
  }
  out +=
      "  --config FILE\n      TOML file with one `name = value` line per parameter; the "
      "command line wins over it\n";
  return out;
}

std::vector<std::pair<std::string, std::string>> ParameterSet::values(Which which) const {
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(impl_->params.size());
  for (const auto& p : impl_->params) {
    if (which == Which::all || !p.launch_only) out.emplace_back(p.name, p.current());
  }
  if (impl_->trailing != nullptr) {
    out.emplace_back(impl_->trailing_name, fmt::format("{}", fmt::join(*impl_->trailing, " ")));
  }
  return out;
}

std::vector<PathParameter> ParameterSet::paths() const {
  std::vector<PathParameter> out;
  for (const auto& p : impl_->params) {
    if (p.path_role != PathRole::none) out.push_back({p.name, p.current(), p.path_role});
  }
  return out;
}

}  // namespace binflow
