#pragma once
// memory_limit: a per-rank bound on resident memory (dask's memory_limit). A bin checks an
// allocation whose size its input decides (the events it is about to read, the arrays of
// its fit) before it makes it; one that would not fit fails the bin with a message instead
// of the kernel's OOM killer ending the rank, and the other bins go on.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "binflow/error.hpp"

namespace binflow {

struct LaunchEnvironment;

/// A bin's allocation would exceed memory_limit: the bin fails (exit status 1), the run
/// goes on.
class MemoryLimitExceeded : public Error {
public:
  using Error::Error;
};

/// Bytes of a size as users write it: "2GB", "1.5 GiB", "800M", "4096", case-insensitive.
/// kB, MB, GB, TB are powers of 1000 (dask); KiB, MiB, GiB, TiB and Slurm's K, M, G, T
/// powers of 1024; no unit is bytes. nullopt for anything else, a negative or a
/// non-finite value.
std::optional<std::int64_t> parse_memory_size(std::string_view text);

/// "1.50 GB": bytes in decimal units, for messages.
std::string format_memory_size(double bytes);

/// This process's resident memory now, in bytes (/proc/self/statm; 0 if unreadable).
std::int64_t resident_bytes();

/// The bound of one rank; none when `bytes() == 0`.
class MemoryLimit {
public:
  MemoryLimit() = default;
  /// `source` says where the bound came from ("memory_limit=2GB", "SLURM_MEM_PER_CPU").
  MemoryLimit(std::int64_t bytes, std::string source);

  /// The value of the parameter `memory_limit` for one of `ranks_on_node` ranks of a node:
  /// "none"; a size (parse_memory_size); or "auto", the scheduler's memory per task when the
  /// job has one (Slurm: SLURM_MEM_PER_CPU x the task's CPUs, else SLURM_MEM_PER_NODE
  /// shared by the node's ranks), none otherwise. UsageError for any other value.
  static MemoryLimit resolve(std::string_view parameter, const LaunchEnvironment& env,
                             int ranks_on_node);

  [[nodiscard]] bool none() const { return bytes_ == 0; }
  [[nodiscard]] std::int64_t bytes() const { return bytes_; }
  [[nodiscard]] const std::string& source() const { return source_; }

  /// Before allocating `bytes`: MemoryLimitExceeded if the process's resident memory plus
  /// `bytes` exceeds the bound, its message starting with `describe()` ("reading 1200000
  /// events"), which is called only then. Free without a bound.
  template <class Describe>
  void check(double bytes, const Describe& describe) const {
    if (!none() && !fits(bytes)) fail(bytes, describe());
  }

private:
  [[nodiscard]] bool fits(double bytes) const;
  [[noreturn]] void fail(double bytes, std::string_view what) const;

  std::int64_t bytes_ = 0;
  std::string source_;
};

}  // namespace binflow
