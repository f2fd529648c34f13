#include "science/dl3_irf.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <limits>
#include <numeric>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "binflow/error.hpp"
#include "science/units.hpp"

namespace binflow::science::dl3 {

namespace {

constexpr double grid_tolerance = 1e-12;  // SCIENCE.md section 1: a grid end's rounding

// Gammapy's LogScale clips at np.finfo(np.float32).tiny before taking the log.
constexpr double float32_tiny = static_cast<double>(std::numeric_limits<float>::min());

constexpr std::array<std::string_view, 8> class_names = {
    "aeff_2d", "psf_3gauss", "psf_table", "psf_king", "bkg_2d", "bkg_3d", "edisp_2d", "rad_max_2d"};

enum class AxisDomain { positive, non_negative, any };

struct AxisSpec {
  std::string_view prefix;
  bool log;
  AxisDomain domain;
};

constexpr AxisSpec energy_axis{"ENERG", true, AxisDomain::positive};
constexpr AxisSpec offset_axis{"THETA", false, AxisDomain::non_negative};
constexpr AxisSpec rad_axis{"RAD", false, AxisDomain::non_negative};
constexpr AxisSpec detx_axis{"DETX", false, AxisDomain::any};
constexpr AxisSpec dety_axis{"DETY", false, AxisDomain::any};

std::string where(const fits::File& file, std::string_view item) {
  return fmt::format("{}[{}] {}", file.path(), file.hdu(), item);
}

std::string source_of(const fits::File& file) {
  return fmt::format("{}[{}]", file.path(), file.hdu());
}

void require_one_row(fits::File& file) {
  const std::int64_t rows = file.rows();
  if (rows != 1) {
    throw UsageError(
        fmt::format("{}: has {} rows, a GADF response table has one", source_of(file), rows));
  }
}

// Gammapy's np.allclose(hi, lo): the axis is given by its nodes, not its bins.
bool all_close(const std::vector<double>& a, const std::vector<double>& b) {
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::abs(a[i] - b[i]) > 1e-8 + 1e-5 * std::abs(b[i])) return false;
  }
  return true;
}

IrfAxis read_axis(fits::File& file, const AxisSpec& spec) {
  const std::string lo_name = fmt::format("{}_LO", spec.prefix);
  const std::string hi_name = fmt::format("{}_HI", spec.prefix);
  const units::Quantity quantity = spec.log ? units::Quantity::energy : units::Quantity::angle;
  std::vector<double> lo = file.read_doubles(lo_name, 0, 1);
  std::vector<double> hi = file.read_doubles(hi_name, 0, 1);
  const double lo_factor =
      units::require_factor(file.column_unit(lo_name), quantity, where(file, lo_name));
  const double hi_factor =
      units::require_factor(file.column_unit(hi_name), quantity, where(file, hi_name));
  if (lo.empty() || lo.size() != hi.size()) {
    throw UsageError(fmt::format("{}: {} has {} values and {} has {}", source_of(file), lo_name,
                                 lo.size(), hi_name, hi.size()));
  }
  for (double& x : lo) x *= lo_factor;
  for (double& x : hi) x *= hi_factor;
  for (std::size_t i = 0; i < lo.size(); ++i) {
    for (const auto& [name, value] : {std::pair{&lo_name, lo[i]}, std::pair{&hi_name, hi[i]}}) {
      const bool ok = std::isfinite(value) &&
                      (spec.domain != AxisDomain::positive || value > 0.0) &&
                      (spec.domain != AxisDomain::non_negative || value >= 0.0);
      if (!ok) {
        throw UsageError(fmt::format("{}: value {} of bin {} is {}", where(file, *name), value, i,
                                     spec.domain == AxisDomain::positive ? "not finite and > 0"
                                     : spec.domain == AxisDomain::non_negative
                                         ? "not finite and >= 0"
                                         : "not finite"));
      }
    }
  }
  IrfAxis axis;
  axis.name = std::string(spec.prefix);
  axis.log = spec.log;
  const std::size_t n = lo.size();
  const auto scale = [&](double x) { return spec.log ? std::log(x) : x; };
  const auto unscale = [&](double s) { return spec.log ? std::exp(s) : s; };
  if (all_close(hi, lo)) {
    // Nodes (Gammapy's MapAxis.from_nodes): edges half-way between nodes in the scale.
    if (n < 2) {
      throw UsageError(fmt::format("{}: a single node ({} = {}) is not an axis", source_of(file),
                                   lo_name, lo[0]));
    }
    for (std::size_t i = 0; i < n; ++i) {
      axis.nodes.push_back(scale(lo[i]));
      if (i > 0 && !(lo[i] > lo[i - 1])) {
        throw UsageError(fmt::format("{}: nodes are not increasing (bin {} <= bin {})",
                                     where(file, lo_name), i, i - 1));
      }
    }
    const std::vector<double>& s = axis.nodes;
    axis.edges.push_back(unscale(s[0] - 0.5 * (s[1] - s[0])));
    for (std::size_t i = 1; i < n; ++i) axis.edges.push_back(unscale(0.5 * (s[i - 1] + s[i])));
    axis.edges.push_back(unscale(s[n - 1] + 0.5 * (s[n - 1] - s[n - 2])));
    return axis;
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (!(lo[i] < hi[i])) {
      throw UsageError(fmt::format("{}: bin {} is empty or reversed ({} = {}, {} = {})",
                                   source_of(file), i, lo_name, lo[i], hi_name, hi[i]));
    }
    if (i > 0) {
      const double gap = std::abs(lo[i] - hi[i - 1]);
      if (gap > 1e-6 * (std::abs(lo[i]) + std::abs(hi[i - 1])) + 1e-12) {
        throw UsageError(
            fmt::format("{}: bins are not contiguous ({} of bin {} is {}, {} of bin {} is {})",
                        source_of(file), hi_name, i - 1, hi[i - 1], lo_name, i, lo[i]));
      }
    }
  }
  // Gammapy's edges: every LO and the last HI; the nodes are their midpoints in the scale.
  axis.edges = lo;
  axis.edges.push_back(hi.back());
  for (std::size_t i = 0; i < n; ++i) {
    axis.nodes.push_back(0.5 * (scale(axis.edges[i]) + scale(axis.edges[i + 1])));
  }
  return axis;
}

enum class ValueDomain { any, non_negative };

struct DataSpec {
  std::string_view column;
  std::optional<units::Quantity> quantity;  // nullopt: the unit is not used
  ValueDomain domain = ValueDomain::non_negative;
  bool zero_reads_as_one = false;  // Gammapy's fix of psf_3gauss sigmas written as zero
};

std::string bin_text(const std::vector<IrfAxis>& axes, std::size_t index) {
  std::string out;
  for (const IrfAxis& axis : axes) {
    if (!out.empty()) out += ", ";
    out += fmt::format("{} bin {}", axis.name, index % axis.size());
    index /= axis.size();
  }
  return out;
}

// The table of `data` over `axis_specs` (binflow's order: energy first), with its unit
// factor in `factor_out`.
IrfTable read_table(fits::File& file, const std::vector<AxisSpec>& axis_specs, const DataSpec& data,
                    double* factor_out = nullptr) {
  IrfTable table;
  std::vector<int> positions;
  for (const AxisSpec& spec : axis_specs) {
    table.axes.push_back(read_axis(file, spec));
    positions.push_back(file.column_position(fmt::format("{}_LO", spec.prefix)));
  }
  const std::string column(data.column);
  // The data cell's axes follow the axis columns' order in the table, the first fastest.
  std::vector<std::size_t> order(axis_specs.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return positions[a] < positions[b]; });
  std::vector<std::int64_t> expected;
  expected.reserve(order.size());
  for (const std::size_t a : order)
    expected.push_back(static_cast<std::int64_t>(table.axes[a].size()));
  const std::vector<std::int64_t> dims = file.cell_dims(column);
  const auto without_ones = [](std::vector<std::int64_t> v) {
    v.erase(std::remove(v.begin(), v.end(), std::int64_t{1}), v.end());
    return v;
  };
  if (without_ones(dims) != without_ones(expected)) {
    std::vector<std::string> names;
    names.reserve(order.size());
    for (const std::size_t a : order) {
      names.push_back(fmt::format("{} ({})", table.axes[a].name, table.axes[a].size()));
    }
    throw UsageError(fmt::format(
        "{}: TDIM ({}) does not match the axes {} (in the order of their columns, the first "
        "fastest)",
        where(file, column), fmt::join(dims, ","), fmt::join(names, ", ")));
  }
  const std::vector<double> raw = file.read_doubles(column, 0, 1);
  double factor = 1.0;
  if (data.quantity) {
    factor = units::require_factor(file.column_unit(column), *data.quantity, where(file, column));
  }
  if (factor_out != nullptr) *factor_out = factor;
  // Strides of binflow's order (axis 0 fastest).
  std::vector<std::size_t> stride(table.axes.size(), 1);
  for (std::size_t a = 1; a < table.axes.size(); ++a) {
    stride[a] = stride[a - 1] * table.axes[a - 1].size();
  }
  table.values.assign(raw.size(), 0.0);
  for (std::size_t file_index = 0; file_index < raw.size(); ++file_index) {
    std::size_t rest = file_index;
    std::size_t index = 0;
    for (const std::size_t a : order) {
      index += (rest % table.axes[a].size()) * stride[a];
      rest /= table.axes[a].size();
    }
    double value = raw[file_index];
    if (!std::isfinite(value) || (data.domain == ValueDomain::non_negative && value < 0.0)) {
      throw UsageError(fmt::format(
          "{}: value {} at {} is {}", where(file, column), value, bin_text(table.axes, index),
          data.domain == ValueDomain::non_negative ? "not finite and >= 0" : "not finite"));
    }
    if (data.zero_reads_as_one && value == 0.0) value = 1.0;
    table.values[index] = value * factor;
  }
  return table;
}

}  // namespace

double IrfAxis::scaled(double x) const { return log ? std::log(x) : x; }

bool IrfAxis::contains(double x) const {
  if (!log) return x >= edges.front() && x <= edges.back();
  if (!(x > 0.0)) return false;
  const double u = std::log(x);
  const double lo = std::log(edges.front());
  const double hi = std::log(edges.back());
  return u >= lo - grid_tolerance * std::max(1.0, std::abs(lo)) &&
         u <= hi + grid_tolerance * std::max(1.0, std::abs(hi));
}

double IrfAxis::clamp(double x) const { return std::clamp(x, edges.front(), edges.back()); }

std::string_view to_string(IrfClass irf_class) {
  return class_names.at(static_cast<std::size_t>(irf_class));
}

std::optional<IrfClass> irf_class_from_string(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (std::size_t i = 0; i < class_names.size(); ++i) {
    if (class_names[i] == lower) return static_cast<IrfClass>(i);
  }
  return std::nullopt;
}

EffectiveArea read_effective_area(fits::File& file) {
  require_one_row(file);
  EffectiveArea aeff;
  aeff.source = source_of(file);
  aeff.table = read_table(file, {energy_axis, offset_axis}, {"EFFAREA", units::Quantity::area});
  aeff.lo_threshold = file.key_double("LO_THRES");
  aeff.hi_threshold = file.key_double("HI_THRES");
  return aeff;
}

Psf read_psf(fits::File& file, IrfClass irf_class) {
  require_one_row(file);
  Psf psf;
  psf.source = source_of(file);
  if (irf_class == IrfClass::psf_table) {
    psf.model = PsfTable{read_table(file, {energy_axis, offset_axis, rad_axis},
                                    {"RPSF", units::Quantity::per_solid_angle})};
    return psf;
  }
  if (irf_class != IrfClass::psf_3gauss) {
    throw UsageError(fmt::format("{}: PSF class {} is not supported (psf_3gauss, psf_table are)",
                                 psf.source, to_string(irf_class)));
  }
  const std::vector<AxisSpec> axes = {energy_axis, offset_axis};
  const auto sigma = [&](std::string_view column) {
    return read_table(file, axes,
                      {column, units::Quantity::angle, ValueDomain::non_negative, true});
  };
  Psf3Gauss gauss;
  gauss.sigma_1 = sigma("SIGMA_1");
  gauss.sigma_2 = sigma("SIGMA_2");
  gauss.sigma_3 = sigma("SIGMA_3");
  gauss.scale = read_table(file, axes, {"SCALE", std::nullopt, ValueDomain::any});
  gauss.ampl_2 = read_table(file, axes, {"AMPL_2", units::Quantity::dimensionless});
  gauss.ampl_3 = read_table(file, axes, {"AMPL_3", units::Quantity::dimensionless});
  psf.model = std::move(gauss);
  return psf;
}

Background read_background(fits::File& file, IrfClass irf_class, bool* fovalign_assumed) {
  require_one_row(file);
  Background bkg;
  bkg.source = source_of(file);
  bkg.irf_class = irf_class;
  if (irf_class != IrfClass::bkg_2d && irf_class != IrfClass::bkg_3d) {
    throw InternalError(fmt::format("read_background: class {}", to_string(irf_class)));
  }
  if (irf_class == IrfClass::bkg_3d) {
    const std::optional<std::string> align = file.key_string("FOVALIGN");
    if (fovalign_assumed != nullptr) *fovalign_assumed = !align.has_value();
    if (align && *align != "RADEC") {
      throw UsageError(fmt::format(
          "{}: FOVALIGN is '{}': a background in field-of-view coordinates aligned with {} "
          "needs the pointing's alt-az track, which binflow does not use; only RADEC is "
          "supported",
          bkg.source, *align, *align));
    }
  }
  // Gammapy also reads "BGD" (CTA 1DC files).
  const std::string_view column = file.has_column("BKG") || !file.has_column("BGD") ? "BKG" : "BGD";
  const std::vector<AxisSpec> axes = irf_class == IrfClass::bkg_2d
                                         ? std::vector<AxisSpec>{energy_axis, offset_axis}
                                         : std::vector<AxisSpec>{energy_axis, detx_axis, dety_axis};
  double factor = 1.0;
  bkg.table = read_table(file, axes, {column, units::Quantity::background_rate}, &factor);
  bkg.floor = float32_tiny * factor;
  return bkg;
}

}  // namespace binflow::science::dl3
