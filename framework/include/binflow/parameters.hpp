#pragma once
// Typed tool parameters parsed from `--key value`, `--key=value`, `key=value` (the
// ctools/ftools habit) and `--config file.toml`. Each parameter is bound to a variable
// whose value at declaration time (the tool's default member initialiser) is the default:
// shown in --help and restored before every parse.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace binflow {

/// Inclusive bounds; an unset side is open.
template <class T>
struct Range {
  std::optional<T> min;
  std::optional<T> max;
};

/// What a text parameter names on the file system, if anything: the driver checks inputs
/// (regular files, or a directory where allowed) and refuses outputs that collide with an
/// input or with each other before anything is opened.
enum class PathRole { none, input_file, input_file_or_directory, output_file };

/// A path parameter as configured: its name, its value ("" = not given) and its role.
struct PathParameter {
  std::string name;
  std::string value;
  PathRole role = PathRole::none;
};

/// A tool's parameters. Not thread-safe; parse() may be called once per configuration.
class ParameterSet {
public:
  ParameterSet();
  ParameterSet(ParameterSet&&) noexcept;
  ParameterSet& operator=(ParameterSet&&) noexcept;
  ~ParameterSet();

  ParameterSet& add(const std::string& name, std::string& value, const std::string& help);
  ParameterSet& add(const std::string& name, double& value, const std::string& help,
                    Range<double> range = {});
  ParameterSet& add(const std::string& name, int& value, const std::string& help,
                    Range<int> range = {});
  ParameterSet& add(const std::string& name, std::int64_t& value, const std::string& help,
                    Range<std::int64_t> range = {});
  ParameterSet& add(const std::string& name, std::uint64_t& value, const std::string& help);
  /// A boolean: `--name` alone means true; values yes/no, true/false, on/off, 1/0.
  ParameterSet& add(const std::string& name, bool& value, const std::string& help);
  /// A string restricted to `choices` (matched case-insensitively, stored as listed).
  ParameterSet& add_choice(const std::string& name, std::string& value,
                           std::vector<std::string> choices, const std::string& help);
  /// A comma-separated list of integers, e.g. `--fail_bins 3,17`.
  ParameterSet& add_list(const std::string& name, std::vector<std::int64_t>& value,
                         const std::string& help);

  /// The words after a lone `--`, kept untouched (a command line passed on, as in
  /// `binflow submit ... -- TOOL ARGS...`); cleared when there is no `--`. Without it, words
  /// after `--` are a usage error.
  ParameterSet& add_trailing(const std::string& name, std::vector<std::string>& words,
                             const std::string& help);

  /// Marks the parameter declared last as one that says only how the run is launched
  /// (threads, schedule, log, output name...), not what it computes. Such parameters are
  /// left out of result_values(): the checkpoint fingerprint and the provenance of
  /// results, which must not depend on the launch.
  ParameterSet& launch_only();
  /// Marks the text parameter declared last as a file the tool reads (see PathRole);
  /// `directory_allowed` also accepts a directory (a DL3 index).
  ParameterSet& input_file(bool directory_allowed = false);
  /// Marks the text parameter declared last as a file the run writes.
  ParameterSet& output_file();
  /// Lets the parameter declared last also be given as the first word that is neither a
  /// parameter nor a parameter's value: `binflow report lc.h5` for `infile=lc.h5`.
  ParameterSet& positional();

  /// Sets every bound variable back to its value at declaration.
  void restore_defaults();
  /// Restores the defaults, then parses argument words (no program name). Throws
  /// UsageError with one line naming the parameter for an unknown name, a value of the
  /// wrong type or out of range, or a config file that cannot be read.
  void parse(const std::vector<std::string>& args);
  /// Whether `name` was given explicitly (command line or config) in the last parse.
  [[nodiscard]] bool given(const std::string& name) const;

  /// The --help text: one block per parameter with type, default, range and meaning.
  [[nodiscard]] std::string help(std::string_view tool, std::string_view summary) const;
  enum class Which { all, results_only };
  /// name -> current value as text, in declaration order; `results_only` leaves out the
  /// launch_only() parameters.
  [[nodiscard]] std::vector<std::pair<std::string, std::string>> values(
      Which which = Which::all) const;
  /// The parameters marked input_file() or output_file(), in declaration order.
  [[nodiscard]] std::vector<PathParameter> paths() const;

private:
  struct Impl;
  template <class T>
  void add_number(const std::string& name, T& value, const std::string& help, Range<T> range,
                  const char* type);
  std::unique_ptr<Impl> impl_;
};

}  // namespace binflow
