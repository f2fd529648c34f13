// Parallel HDF5 through MPI-IO at any rank count: collective create and open, collective
// metadata writes, and a missing file reported on every rank instead of a hang.
#include <mpi.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "binflow/error.hpp"
#include "binflow/h5.hpp"

namespace {

namespace fs = std::filesystem;

int world_rank() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

int world_size() {
  int size = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return size;
}

// A path chosen by rank 0 and shared by all ranks (one test host, so one temp directory).
std::string shared_path(const std::string& name) {
  std::string path;
  if (world_rank() == 0) {
    path = (fs::temp_directory_path() /
            ("binflow_h5_parallel_" + std::to_string(::getpid()) + "_" + name))
               .string();
  }
  int length = static_cast<int>(path.size());
  MPI_Bcast(&length, 1, MPI_INT, 0, MPI_COMM_WORLD);
  path.resize(static_cast<std::size_t>(length));
  MPI_Bcast(path.data(), length, MPI_CHAR, 0, MPI_COMM_WORLD);
  return path;
}

TEST(H5Parallel, CollectiveCreateThenEveryRankReads) {
  const std::string file = shared_path("create.h5");
  const std::vector<double> values = {1.0, 2.0, 3.5};
  // Variable-length strings cannot go through MPI-IO in HDF5 1.10: stored fixed-length.
  const std::vector<std::string> names = {"Crab", "", "PSR B0531+21 \xe2\x9c\x93"};
  {
    // Every rank makes the same metadata calls with the same values, as parallel HDF5 requires.
    binflow::h5::Location out =
        binflow::h5::create_file_parallel(file, binflow::Communicator::borrow(MPI_COMM_WORLD));
    out.write_attribute("ranks", std::int64_t{world_size()});
    out.write_attribute("tool", "h5_parallel_test");
    {
      // Children close before the file: MPI-IO files refuse to close with objects open.
      const binflow::h5::Location group = out.create_group("results");
      group.write("values", values, "s", "written by every rank");
      group.write("names", names);
      group.write("no_names", std::vector<std::string>{});
    }
    out.close();
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (world_rank() == 0) {
    const binflow::h5::Location in = binflow::h5::open_file(file);
    EXPECT_EQ(in.read_int_attribute("ranks"), world_size());
    EXPECT_EQ(in.read_string_attribute("tool"), "h5_parallel_test");
    EXPECT_EQ(in.read_doubles("results/values"), values);
    EXPECT_EQ(in.read_strings("results/names"), names);
    EXPECT_TRUE(in.read_strings("results/no_names").empty());
  }
  MPI_Barrier(MPI_COMM_WORLD);
  {
    const binflow::h5::Location in =
        binflow::h5::open_file_parallel(file, binflow::Communicator::borrow(MPI_COMM_WORLD));
    EXPECT_EQ(in.read_doubles("results/values"), values);
    EXPECT_EQ(in.extent("results/values"), 3);
    EXPECT_EQ(in.read_strings("results/names"), names);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (world_rank() == 0) fs::remove(file);
}

TEST(H5Parallel, MissingFileFailsOnEveryRank) {
  const std::string file = shared_path("missing.h5");
  try {
    (void)binflow::h5::open_file_parallel(file, binflow::Communicator::borrow(MPI_COMM_WORLD));
    ADD_FAILURE() << "no exception for a missing file";
  } catch (const binflow::IoError& e) {
    EXPECT_EQ(std::string(e.what()), file + ": cannot open HDF5 file: it does not exist");
  }
}

}  // namespace
