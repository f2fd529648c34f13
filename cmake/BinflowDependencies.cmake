# Every dependency comes from a Debian 12 package (see scripts/setup.sh); nothing is
# vendored or downloaded at build time.
find_package(MPI 3.1 REQUIRED COMPONENTS C)
find_package(OpenMP REQUIRED COMPONENTS CXX)
find_package(Threads REQUIRED)
find_package(Eigen3 3.4 REQUIRED NO_MODULE)
find_package(fmt REQUIRED)
find_package(spdlog REQUIRED)
find_package(CLI11 REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(HWLOC REQUIRED IMPORTED_TARGET hwloc)
# The live dashboard's HTTP server (Debian builds it as a library, with TLS and compression).
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)
# GADF DL3 input and FITS results (the science library only).
pkg_check_modules(CFITSIO REQUIRED IMPORTED_TARGET cfitsio)
# gzip for *.fits.gz results (cfitsio compresses only through its extended file-name syntax).
find_package(ZLIB REQUIRED)

# The parallel HDF5 build is needed for MPI-IO writes of event files; the serial
# libhdf5-dev would compile but fail at run time, so refuse it here.
set(HDF5_PREFER_PARALLEL ON)
find_package(HDF5 REQUIRED COMPONENTS C)
if(NOT HDF5_IS_PARALLEL)
  message(FATAL_ERROR
    "binflow needs the parallel (MPI) build of HDF5, but CMake found a serial one "
    "(${HDF5_C_INCLUDE_DIRS}). On Debian 12: apt-get install libhdf5-openmpi-dev "
    "and remove libhdf5-dev, or point HDF5_ROOT at the parallel build.")
endif()
if(NOT TARGET binflow_hdf5)
  add_library(binflow_hdf5 INTERFACE)
  target_include_directories(binflow_hdf5 SYSTEM INTERFACE ${HDF5_C_INCLUDE_DIRS})
  target_link_libraries(binflow_hdf5 INTERFACE ${HDF5_C_LIBRARIES})
  target_compile_definitions(binflow_hdf5 INTERFACE ${HDF5_C_DEFINITIONS})
endif()
