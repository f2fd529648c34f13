#pragma once
// The search both event readers (HDF5 and DL3) do on their time-sorted column: the first row
// at or after a time, probing single rows of the file until a small window is left, which is
// read at once and checked, so a bin reads O(log n) single values plus one window, not the
// column.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "binflow/error.hpp"

namespace binflow::science {

/// "NaN", "+inf", "-inf", or the number: how messages show a bad value.
[[nodiscard]] inline std::string describe_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+inf" : "-inf";
  return fmt::format("{}", value);
}

/// Values of a column sorted ascending, read from row `first`: UsageError "<column> is NaN at
/// row 5" or "<column> is not sorted (row 8 < row 7)" for the first row that breaks it. The
/// common case, a fine column, is one vectorisable pass.
inline void check_sorted(std::span<const double> values, const std::string& column,
                         std::int64_t first) {
  double bad = 0.0;
#pragma omp simd reduction(+ : bad)
  for (std::size_t i = 0; i < values.size(); ++i) {
    bad += std::abs(values[i]) <= std::numeric_limits<double>::max() ? 0.0 : 1.0;
  }
#pragma omp simd reduction(+ : bad)
  for (std::size_t i = 1; i < values.size(); ++i) bad += values[i] < values[i - 1] ? 1.0 : 0.0;
  if (bad == 0.0) return;
  for (std::size_t i = 0; i < values.size(); ++i) {
    const auto row = first + static_cast<std::int64_t>(i);
    if (!std::isfinite(values[i])) {
      throw UsageError(fmt::format("{} is {} at row {}", column, describe_value(values[i]), row));
    }
    if (i > 0 && values[i] < values[i - 1]) {
      throw UsageError(fmt::format("{} is not sorted (row {} < row {})", column, row, row - 1));
    }
  }
}

/// The first row in [lo, hi) whose value is >= t in a column sorted ascending, read by
/// `read(first, count) -> std::vector<double>`. Rows are probed one at a time until at most
/// `window` are left; those are read together and checked. `column` names the column in
/// messages ("obs.h5: /events/time", "run.fits[EVENTS] TIME:"): UsageError
/// "<column> is NaN at row 5" or "<column> is not sorted (row 8 < row 7)".
template <class Read>
std::int64_t lower_bound_sorted(const Read& read, double t, std::int64_t lo, std::int64_t hi,
                                std::int64_t window, const std::string& column) {
  const auto not_finite = [&](double value, std::int64_t row) {
    return UsageError(fmt::format("{} is {} at row {}", column, describe_value(value), row));
  };
  while (hi - lo > window) {
    const std::int64_t mid = lo + (hi - lo) / 2;
    const double value = read(mid, 1).front();
    if (!std::isfinite(value)) throw not_finite(value, mid);
    if (value < t) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  const std::vector<double> values = read(lo, hi - lo);
  check_sorted(values, column, lo);
  return lo + (std::lower_bound(values.begin(), values.end(), t) - values.begin());
}

/// One value every `stride` rows of a sorted column (rows 0, stride, 2 stride, ...), read
/// once per reader: a search then reads one bracket of at most `stride` rows instead of
/// probing the file row by row (each probe is a library call of thousands of instructions).
class SortedColumnIndex {
public:
  SortedColumnIndex() = default;
  /// Checks the values (finite, ascending): UsageError "<column> is NaN at row 8192" or
  /// "<column> is not sorted (row 8192 < row 4096)".
  SortedColumnIndex(std::vector<double> values, std::int64_t stride, const std::string& column)
      : values_(std::move(values)), stride_(stride) {
    for (std::size_t k = 0; k < values_.size(); ++k) {
      const auto row = static_cast<std::int64_t>(k) * stride_;
      if (!std::isfinite(values_[k])) {
        throw UsageError(fmt::format("{} is {} at row {}", column, describe_value(values_[k]), row));
      }
      if (k > 0 && values_[k] < values_[k - 1]) {
        throw UsageError(
            fmt::format("{} is not sorted (row {} < row {})", column, row, row - stride_));
      }
    }
  }
  [[nodiscard]] bool empty() const { return values_.empty(); }
  [[nodiscard]] const std::vector<double>& values() const { return values_; }
  [[nodiscard]] std::int64_t stride() const { return stride_; }

  /// [lo, hi) narrowed to the rows where the first value >= t can be (the result may be the
  /// narrowed hi): after the last indexed row below t, up to the first indexed row at or
  /// above it. At most `stride` rows.
  [[nodiscard]] std::pair<std::int64_t, std::int64_t> bracket(double t, std::int64_t lo,
                                                              std::int64_t hi) const {
    const auto k = static_cast<std::int64_t>(std::lower_bound(values_.begin(), values_.end(), t) -
                                             values_.begin());
    const std::int64_t below = k == 0 ? lo : (k - 1) * stride_ + 1;
    const std::int64_t above =
        k == static_cast<std::int64_t>(values_.size()) ? hi : k * stride_;
    const std::int64_t narrowed_hi = std::clamp(above, lo, hi);
    return {std::clamp(below, lo, narrowed_hi), narrowed_hi};
  }

private:
  std::vector<double> values_;
  std::int64_t stride_ = 1;
};

}  // namespace binflow::science
