#pragma once
// Result tables: named, typed, unit-carrying columns; one row per bin.
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "binflow/h5.hpp"

namespace binflow {

enum class ColumnType { f64, i64, str };
/// "f64", "i64" or "str".
std::string_view column_type_name(ColumnType type);

/// The values of the `status` column of every result table.
namespace bin_status {
inline constexpr std::string_view ok = "ok";          ///< the row holds the bin's result
inline constexpr std::string_view failed = "failed";  ///< the bin threw; `message` says why
inline constexpr std::string_view empty = "empty";    ///< nothing to compute on (no events)
}  // namespace bin_status

struct Column {
  std::string name;
  ColumnType type = ColumnType::f64;
  std::string unit;         ///< e.g. "s", "ph cm^-2 s^-1"; empty for dimensionless
  std::string description;  ///< one line, stored as an attribute
};

using Cell = std::variant<double, std::int64_t, std::string>;
using Row = std::vector<Cell>;

/// Ordered list of columns.
class Schema {
public:
  Schema() = default;
  Schema(std::initializer_list<Column> columns) : columns_(columns) {}
  Schema& add(Column column);
  [[nodiscard]] const std::vector<Column>& columns() const { return columns_; }
  [[nodiscard]] std::size_t size() const { return columns_.size(); }
  /// Index of `name`; InternalError if absent.
  [[nodiscard]] std::size_t index_of(std::string_view name) const;
  /// A row of the schema's shape filled with NaN, 0 and "".
  [[nodiscard]] Row blank_row() const;
  /// InternalError unless `row` has the schema's length and cell types.
  void check(const Row& row) const;

private:
  std::vector<Column> columns_;
};

/// Builds one row of a schema by column name, in any order: a rename or a missing column
/// is an InternalError at the first row instead of a silently shifted table.
class RowBuilder {
public:
  explicit RowBuilder(const Schema& schema);
  /// InternalError if `column` is not in the schema or its type differs from `value`'s.
  RowBuilder& set(std::string_view column, Cell value);
  /// The row; InternalError naming the first column that was not set.
  [[nodiscard]] Row take();

private:
  const Schema& schema_;
  Row row_;
  std::vector<bool> set_;
};

/// One column of the console rendering of a table (Table::to_text): which column, and how
/// it reads best. A tool lists the few columns a reader scans; the file keeps them all.
struct TextColumn {
  std::string name;  ///< the column shown
  /// A column of 1-sigma errors shown in the same cell, `3.65e-11 +- 1.3e-12`: the error to
  /// two significant digits and the value to the same decimal place.
  std::string error = {};
  /// The quantity was held fixed: the cell says `2.5 fixed` (no error is shown).
  bool fixed = false;
  /// As many significant digits (6 to 17) as it takes for adjacent rows whose values differ
  /// to read differently: bin edges, MJD of short time bins.
  bool distinct = false;
  /// Left out when no row has anything to show in it (every text empty, every number NaN).
  bool optional = false;
};

/// A schema plus rows. Rank 0 holds the rows of a run, in bin order.
class Table {
public:
  Table() = default;
  explicit Table(Schema schema) : schema_(std::move(schema)) {}
  [[nodiscard]] const Schema& schema() const { return schema_; }
  [[nodiscard]] const std::vector<Row>& rows() const { return rows_; }
  [[nodiscard]] std::size_t size() const { return rows_.size(); }
  void append(Row row);
  [[nodiscard]] double f64(std::size_t row, std::string_view column) const;
  [[nodiscard]] std::int64_t i64(std::size_t row, std::string_view column) const;
  [[nodiscard]] const std::string& str(std::size_t row, std::string_view column) const;

  /// Writes one dataset per column into `group` with "unit" and "description" attributes.
  void write(const h5::Location& group) const;
  /// The inverse of write(): every dataset of `group`, in the order written, as a column
  /// (floats f64, integers i64, strings str). IoError naming the group or dataset if a
  /// member is not a 1-D dataset of those kinds or the lengths differ.
  [[nodiscard]] static Table read(const h5::Location& group);
  /// Fixed-width text rendering for the console (numbers with 6 significant digits), every
  /// column, right-aligned; `max_rows` > 0 shows that many rows and counts the others.
  [[nodiscard]] std::string to_text(std::size_t max_rows = 0) const;
  /// The same with the columns of `view` (every column when it is empty); InternalError
  /// naming a column of the view the table does not have.
  [[nodiscard]] std::string to_text(const std::vector<TextColumn>& view,
                                    std::size_t max_rows = 0) const;

private:
  Schema schema_;
  std::vector<Row> rows_;
};

}  // namespace binflow
