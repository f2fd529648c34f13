// The page's files, included byte for byte by the assembler (.incbin): a 4.8 MB plotly.js as
// a C++ string literal or array would take the compiler minutes and gigabytes. The paths
// come from the build (BINFLOW_WEB_*), which also makes this file depend on them.
#include "report_assets.hpp"

// clang-format off
#define BINFLOW_EMBED(symbol, path)                       \
  __asm__(".pushsection .rodata\n"                        \
          ".global " #symbol "_begin\n"                   \
          ".global " #symbol "_end\n"                     \
          #symbol "_begin:\n"                             \
          ".incbin \"" path "\"\n"                        \
          #symbol "_end:\n"                               \
          ".byte 0\n"                                     \
          ".popsection\n")
// clang-format on

BINFLOW_EMBED(binflow_web_page, BINFLOW_WEB_PAGE);
BINFLOW_EMBED(binflow_web_style, BINFLOW_WEB_STYLE);
BINFLOW_EMBED(binflow_web_script, BINFLOW_WEB_SCRIPT);
BINFLOW_EMBED(binflow_web_plotly, BINFLOW_WEB_PLOTLY);

extern "C" {
extern const char binflow_web_page_begin[], binflow_web_page_end[];
extern const char binflow_web_style_begin[], binflow_web_style_end[];
extern const char binflow_web_script_begin[], binflow_web_script_end[];
extern const char binflow_web_plotly_begin[], binflow_web_plotly_end[];
}

namespace binflow::report_assets {

namespace {
std::string_view view(const char* begin, const char* end) {
  return {begin, static_cast<std::size_t>(end - begin)};
}
}  // namespace

std::string_view page() { return view(binflow_web_page_begin, binflow_web_page_end); }
std::string_view style() { return view(binflow_web_style_begin, binflow_web_style_end); }
std::string_view script() { return view(binflow_web_script_begin, binflow_web_script_end); }
std::string_view plotly() { return view(binflow_web_plotly_begin, binflow_web_plotly_end); }

}  // namespace binflow::report_assets
