#!/usr/bin/env bash
# Installs what binflow needs from Debian 12 packages, only what is missing.
# As root it runs apt-get; otherwise it prints the exact command and stops.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libopenmpi-dev openmpi-bin libhdf5-openmpi-dev hdf5-tools
  libeigen3-dev libcfitsio-dev zlib1g-dev libspdlog-dev libfmt-dev libgtest-dev libcli11-dev
  libhwloc-dev
  iproute2  # the bridge and veth pairs of the three-node test cluster (scripts/cluster-local.sh)
  # OpenBLAS with its own pthread pool (BLAS + LAPACK): the BLAS whose threads binflow caps
  # (tests/mpi/thread_budget_test.cpp, examples/detrend_tool.cpp and its e2e test).
  libopenblas-pthread-dev
  python3 python3-h5py python3-numpy procps util-linux
  python3-gammapy  # Gammapy 1.0: the DL3 fixture and reference, and it reads the FITS results
  clang-tidy-19 libomp-19-dev  # the lint (scripts/tidy.sh); libomp-19-dev is clang's omp.h
  tmux  # a pseudo-terminal for the progress bar's test (tests/e2e/test_progress.py)
  valgrind  # memcheck over small runs (tests/e2e/test_valgrind.py)
  clang-19 libclang-rt-19-dev  # the fuzz targets (scripts/fuzz.sh) and scripts/tsan.sh: clang-19's libFuzzer and sanitizer runtimes
  slurm-wlm munge  # a single-node Slurm for tests/e2e/test_slurm.py (scripts/slurm-local.sh)
  libcpp-httplib-dev  # the live dashboard's HTTP server (dashboard=PORT)
  chromium fonts-dejavu-core  # the browser tests of the report page and the dashboard (tests/e2e/test_report.py)
)
# Node.js and npm fetch the page's plotly.js and the tests' playwright-core (web/); a machine
# with its own Node.js (nodesource) keeps it.
command -v npm > /dev/null || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
# web/node_modules from web/package-lock.json (npm ci), again whenever the lock changes.
install_web() {
  local web
  web="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/web"
  if ! cmp -s "$web/package-lock.json" "$web/node_modules/.binflow-lock.json" 2> /dev/null; then
    echo "installing web/node_modules (npm ci)"
    (cd "$web" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$web/package-lock.json" "$web/node_modules/.binflow-lock.json"
  fi
}
if ((${#missing[@]} == 0)); then
  install_web
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "binflow needs these Debian packages; install them with:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
install_web
