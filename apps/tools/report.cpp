#include "tools/report.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "binflow/error.hpp"
#include "binflow/file_checks.hpp"
#include "binflow/report_page.hpp"

namespace binflow::apps {

namespace {

namespace fs = std::filesystem;

void write_file(const std::string& path, const std::string& text) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) {
    throw IoError(fmt::format("html: cannot create {} ({})", path, std::strerror(errno)));
  }
  const bool written = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  const int error = errno;
  if (std::fclose(f) != 0 || !written) {
    throw IoError(
        fmt::format("html: cannot write {} ({})", path, std::strerror(written ? errno : error)));
  }
}

// The page appears under its name only when complete, like every binflow output.
void write_atomically(const std::string& path, const std::string& text) {
  const std::string temporary = fmt::format("{}.tmp.{}", path, getpid());
  try {
    write_file(temporary, text);
    fs::rename(temporary, path);
  } catch (...) {
    std::error_code ignored;
    fs::remove(temporary, ignored);
    throw;
  }
}

}  // namespace

void ReportTool::declare(ParameterSet& params) {
  params.add("infile", infile_, "HDF5 output of a binflow tool (its /results and /run)")
      .input_file()
      .positional();
  params.add("html", html_, "the page to write; empty = infile with .html for its extension")
      .output_file();
  params.add("clobber", clobber_, "overwrite an existing page");
  params.add("ts_threshold", ts_threshold_,
             "bins with TS below this are drawn as upper limits (4: 2 sigma, as Gammapy's "
             "default)",
             Range<double>{0.0, {}});
}

std::string ReportTool::html_path() const {
  if (!html_.empty()) return html_;
  return fs::path(infile_).replace_extension(".html").string();
}

void ReportTool::validate() {
  if (infile_.empty()) throw UsageError("infile: give the output file to report on");
  const std::string html = html_path();
  if (const auto problem = input_file_problem(html, false, false)) {
    throw UsageError(
        fmt::format("html: '{}' {} (the page is written as a regular file)", html, *problem));
  }
  const fs::path dir = fs::path(html).has_parent_path() ? fs::path(html).parent_path() : ".";
  if (!fs::is_directory(dir)) {
    throw UsageError(fmt::format("html: directory '{}' does not exist", dir.string()));
  }
  if (access(dir.c_str(), W_OK) != 0) {
    throw UsageError(fmt::format("html: directory '{}' is not writable", dir.string()));
  }
  if (fs::exists(html) && same_file(html, infile_)) {
    throw UsageError(fmt::format("html: '{}' is the same file as infile", html));
  }
  if (fs::exists(html) && !clobber_) {
    throw UsageError(fmt::format("html: {} exists (clobber=yes overwrites it)", html));
  }
}

ToolOutput ReportTool::execute(RunContext& ctx) {
  ToolOutput out;
  out.has_results = false;
  if (!ctx.is_root()) return out;
  ReportData data = read_report_data(infile_);
  data.ts_threshold = ts_threshold_;
  const std::string html = html_path();
  write_atomically(
      html, report_page(report_json(data), fmt::format("binflow {}: {}", data.tool, data.source)));
  ctx.log().info("wrote {}", html);
  return out;
}

}  // namespace binflow::apps
