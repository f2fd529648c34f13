#include "binflow/table.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

#include <fmt/format.h>

#include "binflow/error.hpp"

namespace binflow {

std::string_view column_type_name(ColumnType type) {
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

namespace {

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

// One column as the console shows it: per row the value's text and, for a value shown with
// its error or as fixed, the text after it.
struct TextCells {
  std::string header;
  std::vector<std::string> values;
  std::vector<std::string> tails;  // empty unless the column shows errors or "fixed"
  std::string_view separator;      // between value and tail: " +- " or " "
};

std::string number(double x, int digits) { return fmt::format("{:.{}g}", x, digits); }

// With trailing zeros, so that a column of such numbers lines up ("0.930 +- 0.039", not
// "0.93 +- 0.039"), but no bare point ("1200", not "1200."; "1e-14", not "1.e-14").
std::string number_with_zeros(double x, int digits) {
  if (x == 0.0) return "0";
  std::string text = fmt::format("{:#.{}g}", x, digits);
  const std::size_t point = text.find('.');
  if (point != std::string::npos && (point + 1 == text.size() || text[point + 1] == 'e')) {
    text.erase(point, 1);
  }
  return text;
}

// The error to two significant digits and the value to the error's second digit.
int digits_against(double value, double error) {
  if (!std::isfinite(value) || !std::isfinite(error) || error <= 0.0 || value == 0.0) return 6;
  const auto magnitude = [](double x) { return static_cast<int>(std::floor(std::log10(x))); };
  return std::clamp(magnitude(std::fabs(value)) - magnitude(error) + 2, 1, 17);
}

// The fewest digits (6 to 17) that tell adjacent rows apart wherever their values differ.
int distinct_digits(const std::vector<double>& values) {
  constexpr int max_digits = std::numeric_limits<double>::max_digits10;
  for (int digits = 6; digits < max_digits; ++digits) {
    bool apart = true;
    for (std::size_t i = 1; i < values.size() && apart; ++i) {
      const double a = values[i - 1];
      const double b = values[i];
      apart = !(std::isfinite(a) && std::isfinite(b) && a != b &&
                number(a, digits) == number(b, digits));
    }
    if (apart) return digits;
  }
  return max_digits;
}

bool shows_something(const Cell& cell) {
  if (const auto* d = std::get_if<double>(&cell)) return !std::isnan(*d);
  if (const auto* s = std::get_if<std::string>(&cell)) return !s->empty();
  return true;
}

TextCells text_cells(const Table& table, const TextColumn& view, std::size_t shown) {
  const std::size_t c = table.schema().index_of(view.name);
  const Column& column = table.schema().columns()[c];
  const std::vector<Row>& rows = table.rows();
  TextCells out{view.name, {}, {}, {}};
  if (column.type != ColumnType::f64) {
    if (!view.error.empty() || view.fixed || view.distinct) {
      throw InternalError(fmt::format("console column '{}' is not a number column", view.name));
    }
    for (std::size_t r = 0; r < shown; ++r) {
      const Cell& cell = rows[r][c];
      const auto* i = std::get_if<std::int64_t>(&cell);
      out.values.push_back(i != nullptr ? fmt::format("{}", *i) : std::get<std::string>(cell));
    }
    return out;
  }
  std::vector<double> values(shown);
  for (std::size_t r = 0; r < shown; ++r) values[r] = std::get<double>(rows[r][c]);
  if (view.fixed) {
    out.separator = " ";
    for (const double v : values) {
      out.values.push_back(number(v, 6));
      out.tails.emplace_back("fixed");
    }
  } else if (!view.error.empty()) {
    const std::size_t e = table.schema().index_of(view.error);
    out.separator = " +- ";
    for (std::size_t r = 0; r < shown; ++r) {
      const double error = std::get<double>(rows[r][e]);
      if (std::isfinite(error) && error > 0.0) {
        out.values.push_back(number_with_zeros(values[r], digits_against(values[r], error)));
        out.tails.push_back(number_with_zeros(error, 2));
      } else {
        out.values.push_back(number(values[r], 6));
        out.tails.push_back(number(error, 6));
      }
    }
  } else {
    // Where more digits than the usual 6 are needed, every row shows them, zeros included.
    const int digits = view.distinct ? distinct_digits(values) : 6;
    for (const double v : values) {
      out.values.push_back(digits > 6 ? number_with_zeros(v, digits) : number(v, digits));
    }
  }
  return out;
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
                                      columns_[i].name, column_type_name(columns_[i].type)));
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

namespace {

std::string text_attribute_or_empty(const h5::Location& object, const std::string& name) {
  return object.has_attribute(name) ? object.read_string_attribute(name) : std::string();
}

ColumnType column_type(const h5::Location& group, const std::string& name) {
  switch (group.kind_of(name)) {
    case h5::DataKind::real:
      return ColumnType::f64;
    case h5::DataKind::integer:
      return ColumnType::i64;
    case h5::DataKind::text:
      return ColumnType::str;
    case h5::DataKind::other:
      break;
  }
  throw IoError(fmt::format("{}/{} holds neither numbers nor text", group.name(), name));
}

}  // namespace

Table Table::read(const h5::Location& group) {
  Schema schema;
  std::vector<std::vector<Cell>> columns;
  for (const std::string& name : group.children()) {
    const h5::Location object = group.open_object(name);
    const ColumnType type = column_type(group, name);
    schema.add({name, type, text_attribute_or_empty(object, "unit"),
                text_attribute_or_empty(object, "description")});
    std::vector<Cell>& cells = columns.emplace_back();
    if (type == ColumnType::f64) {
      for (const double x : group.read_doubles(name)) cells.emplace_back(x);
    } else if (type == ColumnType::i64) {
      for (const std::int64_t x : group.read_ints(name)) cells.emplace_back(x);
    } else {
      for (std::string& x : group.read_strings(name)) cells.emplace_back(std::move(x));
    }
    if (cells.size() != columns.front().size()) {
      throw IoError(fmt::format("{}/{} has {} rows, {} has {}", group.name(), name, cells.size(),
                                schema.columns().front().name, columns.front().size()));
    }
  }
  Table table(std::move(schema));
  const std::size_t rows = columns.empty() ? 0 : columns.front().size();
  table.rows_.resize(rows);
  for (std::size_t r = 0; r < rows; ++r) {
    table.rows_[r].reserve(columns.size());
    for (auto& column : columns) table.rows_[r].push_back(std::move(column[r]));
  }
  return table;
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
  std::vector<TextColumn> every;
  for (const Column& c : schema_.columns()) every.push_back(TextColumn{c.name});
  return to_text(every, max_rows);
}

std::string Table::to_text(const std::vector<TextColumn>& view, std::size_t max_rows) const {
  if (view.empty()) return to_text(max_rows);
  const std::size_t shown = max_rows == 0 ? rows_.size() : std::min(max_rows, rows_.size());
  std::vector<std::string> headers;
  std::vector<std::vector<std::string>> cells;  // [column][row]
  for (const TextColumn& v : view) {
    if (v.optional) {
      const std::size_t c = schema_.index_of(v.name);
      const bool any =
          std::any_of(rows_.begin(), rows_.begin() + static_cast<std::ptrdiff_t>(shown),
                      [c](const Row& row) { return shows_something(row[c]); });
      if (!any) continue;
    }
    const TextCells t = text_cells(*this, v, shown);
    std::size_t value_width = 0;
    std::size_t tail_width = 0;
    for (const std::string& x : t.values) value_width = std::max(value_width, x.size());
    for (const std::string& x : t.tails) tail_width = std::max(tail_width, x.size());
    std::vector<std::string> column;
    for (std::size_t r = 0; r < shown; ++r) {
      std::string cell = fmt::format("{:>{}}", t.values[r], value_width);
      if (!t.tails.empty()) cell += fmt::format("{}{:>{}}", t.separator, t.tails[r], tail_width);
      column.push_back(std::move(cell));
    }
    headers.push_back(t.header);
    cells.push_back(std::move(column));
  }
  std::vector<std::size_t> width(headers.size());
  for (std::size_t c = 0; c < headers.size(); ++c) {
    width[c] = headers[c].size();
    for (const std::string& cell : cells[c]) width[c] = std::max(width[c], cell.size());
  }
  std::string out;
  const auto line = [&](const std::function<const std::string&(std::size_t)>& cell_of) {
    for (std::size_t c = 0; c < headers.size(); ++c) {
      out += fmt::format("{:>{}}", cell_of(c), width[c]);
      out += c + 1 < headers.size() ? "  " : "\n";
    }
  };
  line([&](std::size_t c) -> const std::string& { return headers[c]; });
  for (std::size_t r = 0; r < shown; ++r) {
    line([&](std::size_t c) -> const std::string& { return cells[c][r]; });
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
