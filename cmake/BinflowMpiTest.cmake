# binflow_add_mpi_test(<name> <target> RANKS <n>... [TIMEOUT <s>] [ARGS ...])
# One ctest entry per rank count, built from the portable MPIEXEC_* variables, with
# PROCESSORS, LABELS mpi and a TIMEOUT so that a deadlock fails instead of hanging.
# Root and oversubscription settings belong to the environment (scripts/test.sh).
function(binflow_add_mpi_test name target)
  cmake_parse_arguments(PARSE_ARGV 2 arg "" "TIMEOUT" "RANKS;ARGS")
  if(NOT arg_RANKS)
    set(arg_RANKS 1 2 3 4)
  endif()
  if(NOT arg_TIMEOUT)
    set(arg_TIMEOUT 120)
  endif()
  foreach(n IN LISTS arg_RANKS)
    add_test(NAME ${name}.np${n}
      COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${n} ${MPIEXEC_PREFLAGS}
              $<TARGET_FILE:${target}> ${MPIEXEC_POSTFLAGS} ${arg_ARGS})
    set_tests_properties(${name}.np${n} PROPERTIES
      PROCESSORS ${n} LABELS mpi TIMEOUT ${arg_TIMEOUT})
  endforeach()
endfunction()
