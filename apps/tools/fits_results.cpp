#include "tools/fits_results.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <utility>
#include <variant>

#include <fmt/format.h>

#include "binflow/error.hpp"

namespace binflow::apps {

namespace {

std::string upper(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// binflow's units read "ph cm^-2 s^-1"; the FITS standard (and Gammapy's writer) spell the
// powers without the caret.
std::string fits_unit(std::string_view unit) {
  std::string out;
  for (const char c : unit) {
    if (c != '^') out += c;
  }
  return out;
}

std::vector<double> doubles(const Table& table, std::string_view column) {
  const std::size_t c = table.schema().index_of(column);
  std::vector<double> out;
  out.reserve(table.size());
  for (const Row& row : table.rows()) out.push_back(std::get<double>(row[c]));
  return out;
}

std::vector<bool> column_is_not(const Table& table, std::string_view column,
                                std::string_view value) {
  const std::size_t c = table.schema().index_of(column);
  std::vector<bool> out;
  out.reserve(table.size());
  for (const Row& row : table.rows()) out.push_back(std::get<std::string>(row[c]) != value);
  return out;
}

// sqrt(TS) with Gammapy's sign convention (negative for a negative amplitude; N0 >= 0 here).
std::vector<double> sqrt_ts(const std::vector<double>& ts) {
  std::vector<double> out;
  out.reserve(ts.size());
  for (const double t : ts) out.push_back(std::sqrt(t));
  return out;
}

// Gammapy's own rule when a table has no is_ul (FluxMaps.is_ul): with a TS, sqrt(TS) below
// its default threshold of 2; without one, wherever an upper limit exists.
std::vector<bool> is_upper_limit(const std::vector<double>& ts, const std::vector<double>& ul) {
  std::vector<bool> out;
  out.reserve(ts.size());
  for (std::size_t i = 0; i < ts.size(); ++i) {
    out.push_back(std::isfinite(ul[i]) && !(ts[i] >= 4.0));
  }
  return out;
}

void write_time_reference(FitsHeader& header, const FitsTimeReference& time) {
  const double day = std::floor(time.mjdref);
  header.key("MJDREFI", static_cast<std::int64_t>(day), "MJD of MET 0 (time_start), integer part")
      .key("MJDREFF", time.mjdref - day, "MJD of MET 0, fraction of the day")
      .key("TIMEUNIT", std::string("s"), "unit of the MET columns")
      // Lower case: Gammapy 1.0's light-curve reader passes TIMESYS to astropy.time as it is,
      // and astropy knows only "tt", "utc"...; astropy's own FITS reader accepts either case.
      .key("TIMESYS", lower(time.timesys), "time system of the MJD and MET columns");
}

}  // namespace

void FitsTable::push(Entry entry) {
  const std::string key = upper(entry.spec.name);
  for (const Entry& e : entries_) {
    if (upper(e.spec.name) == key) {
      throw InternalError(fmt::format("FITS table: column {} twice", entry.spec.name));
    }
  }
  entries_.push_back(std::move(entry));
}

FitsTable& FitsTable::copy(std::string_view name, const std::string& as,
                           std::vector<std::int64_t> dims) {
  const std::size_t c = table_.schema().index_of(name);
  const Column& column = table_.schema().columns()[c];
  std::string format = "D";
  if (column.type == ColumnType::i64) format = "K";
  if (column.type == ColumnType::str) {
    std::size_t width = 1;
    for (const Row& row : table_.rows()) {
      width = std::max(width, std::get<std::string>(row[c]).size());
    }
    format = fmt::format("{}A", width);
  }
  Entry entry;
  entry.spec = fits::ColumnSpec{as.empty() ? column.name : as, format, fits_unit(column.unit),
                                std::move(dims), column.description};
  entry.source = c;
  copied_[c] = true;
  push(std::move(entry));
  return *this;
}

FitsTable& FitsTable::add(std::string name, std::vector<double> values, const std::string& unit,
                          std::string description, std::vector<std::int64_t> dims) {
  Entry entry;
  entry.spec = fits::ColumnSpec{std::move(name), "D", fits_unit(unit), std::move(dims),
                                std::move(description)};
  entry.doubles = std::move(values);
  push(std::move(entry));
  return *this;
}

FitsTable& FitsTable::add_logical(std::string name, std::vector<bool> values,
                                  std::string description, std::vector<std::int64_t> dims) {
  Entry entry;
  entry.spec = fits::ColumnSpec{std::move(name), "L", "", std::move(dims), std::move(description)};
  entry.logicals = std::move(values);
  push(std::move(entry));
  return *this;
}

FitsTable& FitsTable::copy_rest() {
  const auto& columns = table_.schema().columns();
  for (std::size_t c = 0; c < columns.size(); ++c) {
    if (!copied_[c]) copy(columns[c].name);
  }
  return *this;
}

void FitsTable::write(fits::File& file, const std::string& extname) const {
  std::vector<fits::ColumnSpec> specs;
  specs.reserve(entries_.size());
  for (const Entry& e : entries_) specs.push_back(e.spec);
  file.create_table(extname, specs, static_cast<std::int64_t>(table_.size()));
  if (table_.size() == 0) return;
  for (const Entry& e : entries_) {
    const std::string& name = e.spec.name;
    if (!e.source) {
      if (e.spec.format == "L") {
        file.write_logicals(name, e.logicals);
      } else {
        file.write_column(name, e.doubles);
      }
      continue;
    }
    const std::size_t c = *e.source;
    switch (table_.schema().columns()[c].type) {
      case ColumnType::f64:
        file.write_column(name, doubles(table_, table_.schema().columns()[c].name));
        break;
      case ColumnType::i64: {
        std::vector<std::int64_t> values;
        values.reserve(table_.size());
        for (const Row& row : table_.rows()) values.push_back(std::get<std::int64_t>(row[c]));
        file.write_column(name, values);
        break;
      }
      case ColumnType::str: {
        std::vector<std::string> values;
        values.reserve(table_.size());
        for (const Row& row : table_.rows()) values.push_back(std::get<std::string>(row[c]));
        file.write_column(name, values);
        break;
      }
    }
  }
}

void FitsHeader::claim(const std::string& name) {
  std::string key = upper(name);
  if (std::find(written_.begin(), written_.end(), key) != written_.end()) {
    throw InternalError(fmt::format("FITS header: keyword {} written twice", key));
  }
  written_.push_back(std::move(key));
}

FitsHeader& FitsHeader::key(const std::string& name, const std::string& value,
                            const std::string& comment) {
  claim(name);
  file_.write_key(name, value, comment);
  return *this;
}

FitsHeader& FitsHeader::key(const std::string& name, double value, const std::string& comment) {
  claim(name);
  file_.write_key(name, value, comment);
  return *this;
}

FitsHeader& FitsHeader::key(const std::string& name, std::int64_t value,
                            const std::string& comment) {
  claim(name);
  file_.write_key(name, value, comment);
  return *this;
}

FitsHeader& FitsHeader::provenance(const RunProvenance& p, const ToolOutput& out) {
  for (const auto& [name, value] : p.parameters) key(name, value, "parameter");
  for (const auto& [name, value] : p.records()) {
    std::visit([&, &record = name](const auto& v) { key(record, v, "run"); }, value);
  }
  for (const auto& [name, value] : out.attributes) key(name, value, "result");
  return key("CREATOR", fmt::format("binflow {}", p.version), "program that wrote the file");
}

void write_flux_curve(const std::string& path, const ToolOutput& out, const RunProvenance& p,
                      const FluxCurveSpec& spec) {
  const Table& table = out.table;
  const std::size_t rows = table.size();
  const std::vector<double> ts = doubles(table, "ts");
  const std::vector<std::int64_t> one{1};
  const std::vector<std::int64_t> one_by_one{1, 1};
  FitsTable hdu(table);
  hdu.copy("bin")
      .copy(spec.lo, spec.lo_name)
      .copy(spec.hi, spec.hi_name)
      .add("e_min", std::vector<double>(rows, spec.emin), "TeV", "lower energy of the analysis",
           one)
      .add("e_max", std::vector<double>(rows, spec.emax), "TeV", "upper energy of the analysis",
           one)
      .copy("flux", {}, one)
      .copy("flux_err", {}, one)
      .copy("flux_ul", {}, one)
      .copy("ts", {}, one)
      .add("sqrt_ts", sqrt_ts(ts), "", "square root of ts", one)
      .add_logical("is_ul", is_upper_limit(ts, doubles(table, "flux_ul")),
                   "flux_ul is the result: ts < 4, or no ts", one)
      .add_logical("success", column_is_not(table, "status", bin_status::failed),
                   "the fit did not fail", one)
      .copy("n_events", "counts", one_by_one)
      .copy("npred", {}, one_by_one)
      .copy_rest();
  fits::File file = fits::File::create(path);
  hdu.write(file, spec.extname);
  FitsHeader header(file);
  header.key("SED_TYPE", std::string("flux"), "GADF flux points: integral flux e_min..e_max")
      .key("UL_CONF", spec.confidence, "confidence level of the upper limits (one-sided)");
  if (spec.time) write_time_reference(header, *spec.time);
  header.provenance(p, out);
  file.close();
}

void write_flux_points(const std::string& path, const ToolOutput& out, const RunProvenance& p,
                       double confidence) {
  const Table& table = out.table;
  const std::vector<double> ts = doubles(table, "ts");
  const std::vector<std::int64_t> one{1};
  FitsTable hdu(table);
  hdu.copy("bin")
      .copy("e_ref")
      .copy("e_min")
      .copy("e_max")
      .copy("dnde")
      .copy("dnde_err")
      .copy("dnde_ul")
      .copy("ts")
      .add("sqrt_ts", sqrt_ts(ts), "", "square root of ts")
      .add_logical("is_ul", is_upper_limit(ts, doubles(table, "dnde_ul")),
                   "dnde_ul is the result: ts < 4, or no ts")
      .add_logical("success", column_is_not(table, "status", bin_status::failed),
                   "the fit did not fail")
      .copy("counts", {}, one)
      .copy("npred", {}, one)
      .copy_rest();
  fits::File file = fits::File::create(path);
  hdu.write(file, "FLUX_POINTS");
  FitsHeader header(file);
  header.key("SED_TYPE", std::string("dnde"), "GADF flux points: dN/dE at e_ref")
      .key("UL_CONF", confidence, "confidence level of the upper limits (one-sided)")
      .provenance(p, out);
  file.close();
}

void write_plain_table(const std::string& path, const ToolOutput& out, const RunProvenance& p,
                       const std::string& extname, const std::optional<FitsTimeReference>& time) {
  FitsTable hdu(out.table);
  hdu.copy_rest();
  fits::File file = fits::File::create(path);
  hdu.write(file, extname);
  FitsHeader header(file);
  if (time) write_time_reference(header, *time);
  header.provenance(p, out);
  file.close();
}

}  // namespace binflow::apps
