#pragma once
// What every fuzz target shares: the verdict on an input (bad input must be a UsageError;
// any other exception is a finding, as are crashes and sanitizer reports) and a scratch
// file for the parsers that read a path.
#include <cxxabi.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <typeinfo>

#include <fuzzer/FuzzedDataProvider.h>

#include "binflow/error.hpp"

namespace binflow::fuzz {

/// Runs `parse`; a UsageError is the expected answer to bad input, anything else that
/// escapes aborts (libFuzzer then saves the input as a crash) after naming the exception.
template <class Parse>
void expect_usage_errors_only(std::string_view target, Parse&& parse) {
  try {
    parse();
  } catch (const UsageError&) {
  } catch (const std::exception& e) {
    const char* mangled = typeid(e).name();
    int status = 0;
    const std::unique_ptr<char, void (*)(void*)> name(
        abi::__cxa_demangle(mangled, nullptr, nullptr, &status), std::free);
    std::fprintf(stderr, "%.*s: FINDING: %s escaped (not a UsageError): %s\n",
                 static_cast<int>(target.size()), target.data(),
                 status == 0 ? name.get() : mangled, e.what());
    std::abort();
  }
}

/// A value for a field whose valid one is `usual`: that value, one of `specials`, `usual`
/// times a factor in [-4, 4], or any double, as the input decides.
template <std::size_t N>
double interesting(FuzzedDataProvider& in, double usual, const std::array<double, N>& specials) {
  switch (in.ConsumeIntegralInRange<int>(0, 3)) {
    case 0:
      return usual;
    case 1:
      return specials[in.ConsumeIntegralInRange<std::size_t>(0, N - 1)];
    case 2:
      return usual * in.ConsumeFloatingPointInRange<double>(-4.0, 4.0);
    default:
      return in.ConsumeFloatingPoint<double>();
  }
}

/// An invariant of a parser's result; its violation is a finding.
inline void require(bool ok, std::string_view target, std::string_view what) {
  if (ok) return;
  std::fprintf(stderr, "%.*s: FINDING: %.*s\n", static_cast<int>(target.size()), target.data(),
               static_cast<int>(what.size()), what.data());
  std::abort();
}

/// A file of this process in the temporary directory (/dev/shm when there is one: the
/// parsers take paths, and a RAM file system keeps a write per input cheap).
inline std::string scratch_path(std::string_view name) {
  std::error_code ec;
  const std::filesystem::path dir =
      std::filesystem::is_directory("/dev/shm", ec) ? std::filesystem::path("/dev/shm")
                                                     : std::filesystem::temp_directory_path();
  return (dir / ("binflow_fuzz_" + std::to_string(::getpid()) + "_" + std::string(name)))
      .string();
}

inline void write_file(const std::string& path, const std::uint8_t* data, std::size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out) {
    std::fprintf(stderr, "fuzz: cannot write %s\n", path.c_str());
    std::abort();  // the harness, not the parser: stop rather than fuzz nothing
  }
}

}  // namespace binflow::fuzz
