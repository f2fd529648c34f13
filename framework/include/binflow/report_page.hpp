#pragma once
// The report page: one self-contained HTML file (style, plotly.js and the page's script
// inlined, no network) drawing a tool's results and its run's accounting. `binflow report`
// writes it from an output file; the live dashboard (dashboard.hpp) serves the same page.
// The page's files are in web/ and are built into the library.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "binflow/table.hpp"

namespace binflow {

using TextPairs = std::vector<std::pair<std::string, std::string>>;

/// What the page draws: the contents of an output file's /results and /run.
struct ReportData {
  std::string source;         ///< shown in the title: the output file's name
  std::string tool;           ///< chooses the result plot; any other tool gets a table view
  TextPairs attributes;       ///< /results attributes: parameters, provenance, tool summaries
  Table results;              ///< /results
  TextPairs run;              ///< /run attributes: wall, efficiency, imbalance, nodes, placement
  Table bins;                 ///< /run/bins
  Table ranks;                ///< /run/ranks
  double ts_threshold = 4.0;  ///< points with TS below it are drawn as upper limits
};

/// Reads a binflow HDF5 output. UsageError naming the file if it is not one (no /results
/// or /run, or a member that is not a column).
ReportData read_report_data(const std::string& path);

/// The JSON document the page's script draws (a report; the dashboard's final state).
std::string report_json(const ReportData& data);

/// The page around a JSON document: report_json(), or the dashboard's live document
/// {"live": {...}, "tool": ..., "attributes": [...]}.
std::string report_page(std::string_view data_json, std::string_view title);

/// JSON pieces shared by the page's documents: a string (with `<` escaped so that no text
/// can close the page's script element), a number (non-finite ones as null), name/value
/// pairs as [[name, value], ...].
std::string json_string(std::string_view text);
std::string json_number(double x);
std::string json_pairs(const TextPairs& pairs);

}  // namespace binflow
