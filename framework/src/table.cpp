#include "binflow/table.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "binflow/error.hpp"

namespace binflow {

namespace {

std::string_view type_name(ColumnType type) {
  switch (type) {
    case ColumnType::f64:
      return "f64";
    case ColumnType::i64:
      return "i64";
    case ColumnType::str:
      return "str";
  }
  return "?";
}

std::size_t cell_type_index(ColumnType type) {
  switch (type) {
    case ColumnType::f64:
      return 0;
    case ColumnType::i64:
      return 1;
    case ColumnType::str:
      return 2;
  }
  return 0;
}

std::string format_cell(const Cell& cell) {
  if (const auto* d = std::get_if<double>(&cell)) return fmt::format("{:.6g}", *d);
  if (const auto* i = std::get_if<std::int64_t>(&cell)) return fmt::format("{}", *i);
  return std::get<std::string>(cell);
}

}  // namespace

Schema& Schema::add(Column column) {
  columns_.push_back(std::move(column));
  return *this;
}

std::size_t Schema::index_of(std::string_view name) const {
  for (std::size_t i = 0; i < columns_.size(); ++i) {
    if (columns_[i].name == name) return i;
  }
  throw InternalError(fmt::format("table has no column '{}'", name));
}

Row Schema::blank_row() const {
  Row row;
  row.reserve(columns_.size());
  for (const auto& column : columns_) {
    switch (column.type) {
      case ColumnType::f64:
        row.emplace_back(std::numeric_limits<double>::quiet_NaN());
        break;
      case ColumnType::i64:
        row.emplace_back(std::int64_t{0});
        break;
      case ColumnType::str:
        row.emplace_back(std::string{});
        break;
    }
  }
  return row;
}

void Schema::check(const Row& row) const {
  if (row.size() != columns_.size()) {
    throw InternalError(
        fmt::format("row has {} cells but the table has {} columns", row.size(), columns_.size()));
  }
  for (std::size_t i = 0; i < row.size(); ++i) {
    if (row[i].index() != cell_type_index(columns_[i].type)) {
      throw InternalError(fmt::format("column '{}' expects {} but the row holds another type",
                                      columns_[i].name, type_name(columns_[i].type)));
    }
  }
}

void Table::append(Row row) {
  schema_.check(row);
  rows_.push_back(std::move(row));
}

double Table::f64(std::size_t row, std::string_view column) const {
  return std::get<double>(rows_.at(row).at(schema_.index_of(column)));
}

std::int64_t Table::i64(std::size_t row, std::string_view column) const {
  return std::get<std::int64_t>(rows_.at(row).at(schema_.index_of(column)));
}

const std::string& Table::str(std::size_t row, std::string_view column) const {
  return std::get<std::string>(rows_.at(row).at(schema_.index_of(column)));
}

void Table::write(const h5::Location& group) const {
  const auto& columns = schema_.columns();
  for (std::size_t c = 0; c < columns.size(); ++c) {
    const Column& col = columns[c];
    switch (col.type) {
      case ColumnType::f64: {
        std::vector<double> values(rows_.size());
        for (std::size_t r = 0; r < rows_.size(); ++r) values[r] = std::get<double>(rows_[r][c]);
        group.write(col.name, values, col.unit, col.description);
        break;
      }
      case ColumnType::i64: {
        std::vector<std::int64_t> values(rows_.size());
        for (std::size_t r = 0; r < rows_.size(); ++r) {
          values[r] = std::get<std::int64_t>(rows_[r][c]);
        }
        group.write(col.name, values, col.unit, col.description);
        break;
      }
      case ColumnType::str: {
        std::vector<std::string> values(rows_.size());
        for (std::size_t r = 0; r < rows_.size(); ++r) {
          values[r] = std::get<std::string>(rows_[r][c]);
        }
        group.write(col.name, values, col.unit, col.description);
        break;
      }
    }
  }
}

std::string Table::to_text(std::size_t max_rows) const {
  const auto& columns = schema_.columns();
  const std::size_t shown = max_rows == 0 ? rows_.size() : std::min(max_rows, rows_.size());
  std::vector<std::vector<std::string>> cells(shown + 1);
  std::vector<std::size_t> width(columns.size(), 0);
  for (std::size_t c = 0; c < columns.size(); ++c) {
    cells[0].push_back(columns[c].name);
    width[c] = columns[c].name.size();
  }
  for (std::size_t r = 0; r < shown; ++r) {
    for (std::size_t c = 0; c < columns.size(); ++c) {
      cells[r + 1].push_back(format_cell(rows_[r][c]));
      width[c] = std::max(width[c], cells[r + 1].back().size());
    }
  }
  std::string out;
  for (const auto& line : cells) {
    for (std::size_t c = 0; c < line.size(); ++c) {
      out += fmt::format("{:>{}}", line[c], width[c]);
      out += c + 1 < line.size() ? "  " : "\n";
    }
  }
  if (shown < rows_.size()) out += fmt::format("... {} more rows\n", rows_.size() - shown);
  return out;
}

RowBuilder::RowBuilder(const Schema& schema)
    : schema_(schema), row_(schema.blank_row()), set_(schema.size(), false) {}

RowBuilder& RowBuilder::set(std::string_view column, Cell value) {
  const std::size_t i = schema_.index_of(column);
  if (value.index() != row_[i].index()) {
    throw InternalError(fmt::format("row: column '{}' has another type", column));
  }
  row_[i] = std::move(value);
  set_[i] = true;
  return *this;
}

Row RowBuilder::take() {
  for (std::size_t i = 0; i < set_.size(); ++i) {
    if (!set_[i]) {
      throw InternalError(fmt::format("row: column '{}' was not set", schema_.columns()[i].name));
    }
  }
  return std::move(row_);
}

}  // namespace binflow
