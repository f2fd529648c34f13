#include "binflow/memory_limit.hpp"

#include <unistd.h>

#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <utility>

#include <fmt/format.h>

#include "binflow/thread_budget.hpp"
#include "text.hpp"

namespace binflow {

namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The factor of a unit, lower case; 0 for an unknown one.
double unit_factor(std::string_view unit) {
  static constexpr std::array<std::pair<std::string_view, double>, 14> units{{
      {"", 1.0},
      {"b", 1.0},
      {"kb", 1e3},
      {"mb", 1e6},
      {"gb", 1e9},
      {"tb", 1e12},
      {"kib", 1024.0},
      {"mib", 1048576.0},
      {"gib", 1073741824.0},
      {"tib", 1099511627776.0},
      {"k", 1024.0},
      {"m", 1048576.0},
      {"g", 1073741824.0},
      {"t", 1099511627776.0},
  }};
  for (const auto& [name, factor] : units) {
    if (name == unit) return factor;
  }
  return 0.0;
}

}  // namespace

std::optional<std::int64_t> parse_memory_size(std::string_view text) {
  const std::string trimmed(detail::trim(text));
  double value = 0.0;
  const char* end = trimmed.c_str() + trimmed.size();
  const auto [stop, error] = std::from_chars(trimmed.c_str(), end, value);
  if (error != std::errc{} || !std::isfinite(value) || value < 0.0) return std::nullopt;
  const double factor = unit_factor(lower(detail::trim(std::string_view(stop, end))));
  const double bytes = value * factor;
  // 2^62 bytes: far beyond any node, and safely inside int64.
  if (factor == 0.0 || bytes > 4.6e18) return std::nullopt;
  return static_cast<std::int64_t>(std::llround(bytes));
}

std::string format_memory_size(double bytes) {
  if (bytes >= 1e9) return fmt::format("{:.2f} GB", bytes / 1e9);
  if (bytes >= 1e6) return fmt::format("{:.1f} MB", bytes / 1e6);
  return fmt::format("{:.0f} kB", bytes / 1e3);
}

std::int64_t resident_bytes() {
  // statm: size resident shared ... in pages; one read of a small procfs file.
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  long size = 0;
  long resident = 0;
  const int got = std::fscanf(f, "%ld %ld", &size, &resident);
  std::fclose(f);
  if (got != 2) return 0;
  return static_cast<std::int64_t>(resident) * sysconf(_SC_PAGESIZE);
}

MemoryLimit::MemoryLimit(std::int64_t bytes, std::string source)
    : bytes_(bytes), source_(std::move(source)) {}

MemoryLimit MemoryLimit::resolve(std::string_view parameter, const LaunchEnvironment& env,
                                 int ranks_on_node) {
  const std::string value = lower(detail::trim(parameter));
  if (value == "none") return {};
  if (value == "auto") {
    if (env.slurm_mem_per_cpu) {
      const int cpus = env.slurm_cpus_per_task.value_or(1);
      return {*env.slurm_mem_per_cpu * cpus,
              fmt::format("SLURM_MEM_PER_CPU x {} CPUs per task", cpus)};
    }
    if (env.slurm_mem_per_node) {
      const int ranks = ranks_on_node > 0 ? ranks_on_node : 1;
      return {*env.slurm_mem_per_node / ranks,
              fmt::format("SLURM_MEM_PER_NODE / {} ranks on the node", ranks)};
    }
    return {};
  }
  const std::optional<std::int64_t> bytes = parse_memory_size(value);
  if (!bytes || *bytes == 0) {
    throw UsageError(fmt::format(
        "memory_limit={}: expected auto, none or a size such as 2GB, 1.5GiB or 800M", parameter));
  }
  return {*bytes, fmt::format("memory_limit={}", detail::trim(parameter))};
}

bool MemoryLimit::fits(double bytes) const {
  return static_cast<double>(resident_bytes()) + bytes <= static_cast<double>(bytes_);
}

void MemoryLimit::fail(double bytes, std::string_view what) const {
  const auto held = static_cast<double>(resident_bytes());
  throw MemoryLimitExceeded(fmt::format(
      "{} needs {} more, but the rank holds {} of its {} ({})",
      what, format_memory_size(bytes), format_memory_size(held),
      format_memory_size(static_cast<double>(bytes_)), source_));
}

}  // namespace binflow
