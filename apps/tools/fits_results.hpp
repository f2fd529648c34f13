#pragma once
// The FITS output of the fitting tools (outfile *.fits, format=fits): their result tables in
// the GADF flux-point forms Gammapy 1.0 reads, every other column of the HDF5 /results beside
// them, and the run's provenance in the header. docs/science.md ("FITS output") has the
// column mapping and the reasons for it.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "binflow/table.hpp"
#include "binflow/tool.hpp"
#include "science/fits.hpp"

namespace binflow::apps {

/// A binary table assembled column by column from a result Table, then written as one HDU.
/// Column names are unique regardless of case (FITS matches them so); a clash, or a column
/// the table does not have, is an InternalError.
class FitsTable {
public:
  explicit FitsTable(const Table& table) : table_(table), copied_(table.schema().size(), false) {}

  /// Column `name` of the table, under `as` (empty: its own name), with TDIM `dims`. A
  /// column with TDIM {1} holds one-element arrays: Gammapy's flux-point readers want the
  /// quantities of a light curve so (one energy bin per row) and counts and npred with a
  /// further axis (datasets).
  FitsTable& copy(std::string_view name, const std::string& as = {},
                  std::vector<std::int64_t> dims = {});
  /// A column computed from the table (one value per row).
  FitsTable& add(std::string name, std::vector<double> values, const std::string& unit,
                 std::string description, std::vector<std::int64_t> dims = {});
  FitsTable& add_logical(std::string name, std::vector<bool> values, std::string description,
                         std::vector<std::int64_t> dims = {});
  /// Every column of the table not copied yet, under its own name, in table order.
  FitsTable& copy_rest();

  /// Appends the HDU `extname` to `file` and writes the columns; it stays current.
  void write(fits::File& file, const std::string& extname) const;

private:
  struct Entry {
    fits::ColumnSpec spec;
    std::optional<std::size_t> source;  // column of the table, or computed
    std::vector<double> doubles;
    std::vector<bool> logicals;
  };
  void push(Entry entry);

  const Table& table_;
  std::vector<Entry> entries_;
  std::vector<bool> copied_;
};

/// The header keywords of a results HDU (FitsHeader::write_provenance) checked for clashes:
/// a keyword written twice, whatever its case, is an InternalError, so that no parameter can
/// silently overwrite a GADF keyword.
class FitsHeader {
public:
  explicit FitsHeader(fits::File& file) : file_(file) {}
  FitsHeader& key(const std::string& name, const std::string& value, const std::string& comment);
  FitsHeader& key(const std::string& name, double value, const std::string& comment);
  FitsHeader& key(const std::string& name, std::int64_t value, const std::string& comment);
  /// Every parameter, the run's provenance records and the tool's extra attributes, under
  /// the names of the HDF5 /results attributes (upper case; HIERARCH when longer than 8
  /// characters), then CREATOR.
  FitsHeader& provenance(const RunProvenance& p, const ToolOutput& out);

private:
  void claim(const std::string& name);
  fits::File& file_;
  std::vector<std::string> written_;
};

/// The time reference of MET columns (time_start, time_stop): MJDREFI/MJDREFF, TIMEUNIT and
/// TIMESYS, which also says in what time system the MJD columns are.
struct FitsTimeReference {
  double mjdref = 0.0;
  std::string timesys;  ///< "TT", "UTC", ...
};

/// A light curve (time_min, time_max from mjd_start, mjd_stop) or a phase curve (phase_min,
/// phase_max) in the layout of Gammapy's FluxPoints.read(path, format="lightcurve"): SED type
/// `flux` over [emin, emax], with binflow's flux, flux_err, flux_ul, ts, counts (n_events)
/// and npred, derived sqrt_ts, is_ul and success, then every other column.
struct FluxCurveSpec {
  std::string extname;  ///< LIGHTCURVE, PHASECURVE
  std::string lo;       ///< the table's column of the bins' lower edges (mjd_start, phase_min)
  std::string hi;
  std::string lo_name;  ///< its name in the file (time_min, phase_min)
  std::string hi_name;
  double emin = 0.0;  ///< TeV, the analysis' energy range
  double emax = 0.0;
  double confidence = 0.0;                ///< of the upper limits: UL_CONF
  std::optional<FitsTimeReference> time;  ///< light curves
};
void write_flux_curve(const std::string& path, const ToolOutput& out, const RunProvenance& p,
                      const FluxCurveSpec& spec);

/// spectrum's flux points as a GADF `gadf-sed` table (FluxPoints.read(path)), HDU
/// FLUX_POINTS: SED type `dnde` at e_ref with e_min, e_max, dnde, dnde_err, dnde_ul, ts,
/// sqrt_ts, is_ul, success, counts, npred, then every other column; the global fit in the
/// header.
void write_flux_points(const std::string& path, const ToolOutput& out, const RunProvenance& p,
                       double confidence);

/// A table as it is (fit's one row), every column, in the HDU `extname`.
void write_plain_table(const std::string& path, const ToolOutput& out, const RunProvenance& p,
                       const std::string& extname, const std::optional<FitsTimeReference>& time);

}  // namespace binflow::apps
