# Sourced by the scripts: the launch environment of this machine.
# Open MPI refuses to run as root unless told twice; CI and fresh machines run as root.
if [[ $(id -u) -eq 0 ]]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
BINFLOW_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BINFLOW_BUILD=${BINFLOW_BUILD:-$BINFLOW_ROOT/build}
NPROC=$(nproc)
