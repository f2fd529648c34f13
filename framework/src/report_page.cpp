#include "binflow/report_page.hpp"

#include <cmath>
#include <filesystem>

#include <fmt/format.h>

#include "binflow/error.hpp"
#include "binflow/h5.hpp"
#include "report_assets.hpp"

namespace binflow {

namespace {

std::string cell_json(const Cell& cell) {
  if (const double* x = std::get_if<double>(&cell)) return json_number(*x);
  if (const std::int64_t* n = std::get_if<std::int64_t>(&cell)) {
    // JavaScript's numbers hold integers exactly up to 2^53; larger ones travel as text.
    constexpr std::int64_t exact = std::int64_t{1} << 53;
    if (*n > exact || *n < -exact) return json_string(fmt::format("{}", *n));
    return fmt::format("{}", *n);
  }
  return json_string(std::get<std::string>(cell));
}

// Column-wise, as the page reads it: {"columns": [{"name", "unit", "description", "type",
// "values"}, ...]}.
std::string table_json(const Table& table) {
  std::string out = R"({"columns":[)";
  const auto& columns = table.schema().columns();
  for (std::size_t c = 0; c < columns.size(); ++c) {
    const Column& column = columns[c];
    out += fmt::format(R"({}{{"name":{},"unit":{},"description":{},"type":"{}","values":[)",
                       c ? "," : "", json_string(column.name), json_string(column.unit),
                       json_string(column.description), column_type_name(column.type));
    for (std::size_t r = 0; r < table.size(); ++r) {
      if (r) out += ',';
      out += cell_json(table.rows()[r][c]);
    }
    out += "]}";
  }
  return out + "]}";
}

TextPairs read_attributes(const h5::Location& group) {
  TextPairs out;
  for (const std::string& name : group.attribute_names()) {
    out.emplace_back(name, group.read_attribute_text(name));
  }
  return out;
}

std::string text_of(const TextPairs& pairs, std::string_view name) {
  for (const auto& [key, value] : pairs) {
    if (key == name) return value;
  }
  return {};
}

// Splits the page template at `marker`, which it must hold exactly once.
std::pair<std::string_view, std::string_view> split_at(std::string_view text,
                                                       std::string_view marker) {
  const std::size_t at = text.find(marker);
  if (at == std::string_view::npos || text.find(marker, at + 1) != std::string_view::npos) {
    throw InternalError(fmt::format("report page template: {} must occur once", marker));
  }
  return {text.substr(0, at), text.substr(at + marker.size())};
}

}  // namespace

std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    switch (ch) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '<':  // `</script>` in a value must not end the page's data element
        out += "\\u003c";
        break;
      default:
        if (c < 0x20) {
          out += fmt::format("\\u{:04x}", c);
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}

std::string json_number(double x) {
  if (!std::isfinite(x)) return "null";
  return fmt::format("{}", x);
}

std::string json_pairs(const TextPairs& pairs) {
  std::string out = "[";
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    out += fmt::format("{}[{},{}]", i ? "," : "", json_string(pairs[i].first),
                       json_string(pairs[i].second));
  }
  return out + "]";
}

ReportData read_report_data(const std::string& path) {
  ReportData data;
  data.source = std::filesystem::path(path).filename().string();
  try {
    const h5::Location file = h5::open_file(path);
    for (const char* group : {"results", "run", "run/bins", "run/ranks"}) {
      if (!file.has(group)) {
        throw UsageError(fmt::format(
            "{}: has no /{}: not the output of a binflow tool that maps bins", path, group));
      }
    }
    const h5::Location results = file.open_group("results");
    data.attributes = read_attributes(results);
    data.results = Table::read(results);
    const h5::Location run = file.open_group("run");
    data.run = read_attributes(run);
    data.bins = Table::read(run.open_group("bins"));
    data.ranks = Table::read(run.open_group("ranks"));
  } catch (const IoError& e) {
    throw UsageError(fmt::format("{}: cannot be read as a binflow output ({})", path, e.what()));
  }
  data.tool = text_of(data.attributes, "tool");
  return data;
}

std::string report_json(const ReportData& data) {
  return fmt::format(R"({{"source":{},"tool":{},"ts_threshold":{},"attributes":{},"results":{},)"
                     R"("run":{{"attributes":{},"bins":{},"ranks":{}}},"live":null}})",
                     json_string(data.source), json_string(data.tool),
                     json_number(data.ts_threshold), json_pairs(data.attributes),
                     table_json(data.results), json_pairs(data.run), table_json(data.bins),
                     table_json(data.ranks));
}

std::string report_page(std::string_view data_json, std::string_view title) {
  const std::string_view page = report_assets::page();
  const auto [head, after_title] = split_at(page, "<!--binflow:title-->");
  const auto [title_to_style, after_style] = split_at(after_title, "<!--binflow:style-->");
  const auto [style_to_data, after_data] = split_at(after_style, "<!--binflow:data-->");
  const auto [data_to_plotly, after_plotly] = split_at(after_data, "<!--binflow:plotly-->");
  const auto [plotly_to_script, tail] = split_at(after_plotly, "<!--binflow:script-->");
  std::string escaped_title;
  for (const char c : title) {
    if (c == '<') {
      escaped_title += "&lt;";
    } else if (c == '&') {
      escaped_title += "&amp;";
    } else {
      escaped_title += c;
    }
  }
  std::string out;
  out.reserve(page.size() + report_assets::plotly().size() + report_assets::script().size() +
              data_json.size() + 1024);
  for (const std::string_view piece :
       {head, std::string_view(escaped_title), title_to_style, report_assets::style(),
        style_to_data, data_json, data_to_plotly, report_assets::plotly(), plotly_to_script,
        report_assets::script(), tail}) {
    out += piece;
  }
  return out;
}

}  // namespace binflow
