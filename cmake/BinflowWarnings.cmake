# Warnings are a target linked PRIVATE, never global flags.
add_library(binflow_warnings INTERFACE)
add_library(binflow::warnings ALIAS binflow_warnings)
target_compile_options(binflow_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion
  -Wnon-virtual-dtor -Wold-style-cast -Woverloaded-virtual -Wnull-dereference
  $<$<BOOL:${BINFLOW_WERROR}>:-Werror>)
# BINFLOW_SANITIZE=address,undefined (scripts/sanitize.sh), thread, ...: every binflow target
# links binflow::warnings, so the whole suite is instrumented. UBSan findings are fatal
# (-fno-sanitize-recover) so that a finding fails the test that hit it instead of scrolling by.
if(BINFLOW_SANITIZE)
  set(binflow_sanitize_flags -fsanitize=${BINFLOW_SANITIZE} -fno-omit-frame-pointer)
  if(BINFLOW_SANITIZE MATCHES "undefined")
    list(APPEND binflow_sanitize_flags -fno-sanitize-recover=undefined)
  endif()
  target_compile_options(binflow_warnings INTERFACE ${binflow_sanitize_flags})
  target_link_options(binflow_warnings INTERFACE -fsanitize=${BINFLOW_SANITIZE})
endif()
