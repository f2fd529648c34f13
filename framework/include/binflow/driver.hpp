#pragma once
// The driver behind `binflow TOOL ARGS...`: argv -> a run, with one funnel that turns any
// failure into one line and the documented exit status (error.hpp).
#include "binflow/tool.hpp"

namespace binflow {

/// MPI start-up, parameter parsing, thread budget, output checks, the run, the output file
/// (HDF5, or FITS through Tool::write_fits; written to a temporary name and renamed), the
/// console table (Tool::console_view), the run report, and the exit status.
/// Collective over MPI_COMM_WORLD.
int run_main(int argc, char** argv, const ToolRegistry& registry);

}  // namespace binflow
