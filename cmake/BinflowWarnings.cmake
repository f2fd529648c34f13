# Warnings are a target linked PRIVATE, never global flags.
add_library(binflow_warnings INTERFACE)
add_library(binflow::warnings ALIAS binflow_warnings)
target_compile_options(binflow_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion
  -Wnon-virtual-dtor -Wold-style-cast -Woverloaded-virtual -Wnull-dereference
  $<$<BOOL:${BINFLOW_WERROR}>:-Werror>)
if(BINFLOW_SANITIZE)
  target_compile_options(binflow_warnings INTERFACE -fsanitize=${BINFLOW_SANITIZE} -fno-omit-frame-pointer)
  target_link_options(binflow_warnings INTERFACE -fsanitize=${BINFLOW_SANITIZE})
endif()
