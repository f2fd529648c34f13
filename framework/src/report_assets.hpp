#pragma once
// The report page's files (web/), built into the library by report_assets.cpp so that a
// report is one file that needs neither the source tree nor the network.
#include <string_view>

namespace binflow::report_assets {

std::string_view page();    ///< web/report.html, with its <!--binflow:...--> markers
std::string_view style();   ///< web/report.css
std::string_view script();  ///< web/report.js
std::string_view plotly();  ///< plotly.min.js of web/node_modules (version in web/package.json)

}  // namespace binflow::report_assets
