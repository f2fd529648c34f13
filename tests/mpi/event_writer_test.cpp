// The collective event-file writer and the two-pass parallel simulation at any rank count:
// what every rank reads back is what was written, the file equals the in-memory simulation
// bit for bit, and a writer that is not committed leaves nothing under the final name.
#include <mpi.h>
#include <unistd.h>

#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "binflow/error.hpp"
#include "science/event_file.hpp"
#include "science/response.hpp"
#include "science/simulate.hpp"

namespace {

namespace fs = std::filesystem;
using binflow::science::EventFileReader;
using binflow::science::EventFileWriter;
using binflow::science::Events;
using binflow::science::Observation;

constexpr double inf = std::numeric_limits<double>::infinity();

const binflow::Communicator& world() {
  static const binflow::Communicator comm = binflow::Communicator::borrow(MPI_COMM_WORLD);
  return comm;
}

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

// A fresh directory chosen by rank 0 and shared by all ranks (one test host).
std::string shared_dir(const std::string& name) {
  std::string path;
  if (world_rank() == 0) {
    path = (fs::temp_directory_path() /
            ("binflow_event_writer_" + std::to_string(::getpid()) + "_" + name))
               .string();
    fs::remove_all(path);
    fs::create_directories(path);
  }
  int length = static_cast<int>(path.size());
  MPI_Bcast(&length, 1, MPI_INT, 0, MPI_COMM_WORLD);
  path.resize(static_cast<std::size_t>(length));
  MPI_Bcast(path.data(), length, MPI_CHAR, 0, MPI_COMM_WORLD);
  return path;
}

std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir))
    names.push_back(entry.path().filename().string());
  return names;
}

Events rows(std::int64_t first, std::int64_t last) {
  Events ev;
  for (std::int64_t i = first; i < last; ++i) {
    const auto x = static_cast<double>(i);
    ev.time.push_back(0.25 * x);
    ev.energy.push_back(0.03 + 1e-4 * x);
    ev.ra.push_back(83.0 + 1e-7 * x);
    ev.dec.push_back(22.0 - 1e-7 * x);
  }
  return ev;
}

void expect_same(const Events& a, const Events& b) {
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(a.time, b.time);
  EXPECT_EQ(a.energy, b.energy);
  EXPECT_EQ(a.ra, b.ra);
  EXPECT_EQ(a.dec, b.dec);
}

TEST(EventWriter, UnevenBlocksOverSeveralRoundsReadBackOnEveryRank) {
  const std::string dir = shared_dir("uneven");
  const std::string path = dir + "/events.h5";
  // More than one collective round (4 chunks of 64k rows) on one rank; with several ranks the
  // last one holds nothing, so it takes part in the rounds with an empty selection.
  const std::int64_t total = 600001;
  const int size = world_size();
  const int rank = world_rank();
  const int writers = size > 1 ? size - 1 : 1;
  const std::int64_t first = rank < writers ? total * rank / writers : total;
  const std::int64_t last = rank < writers ? total * (rank + 1) / writers : total;
  const Observation obs = binflow::science::default_observation(3600.0, 100.0);
  binflow::science::write_event_file(path, obs, rows(first, last), world());
  MPI_Barrier(MPI_COMM_WORLD);

  const EventFileReader reader(path);
  EXPECT_EQ(reader.size(), total);
  EXPECT_EQ(reader.observation().gti.start, obs.gti.start);
  EXPECT_EQ(reader.observation().irf.psf_sigma, obs.irf.psf_sigma);
  expect_same(reader.read_time_range(-inf, inf), rows(0, total));
  expect_same(reader.read_time_range(1000.0, 1000.75), rows(4000, 4003));
  EXPECT_EQ(files_in(dir), std::vector<std::string>{"events.h5"});
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0) fs::remove_all(dir);
}

TEST(EventWriter, ParallelSimulationEqualsTheInMemoryOne) {
  const std::string dir = shared_dir("simulate");
  const std::string path = dir + "/sim.h5";
  const Observation obs = binflow::science::default_observation(4000.0);
  const binflow::science::Response response(obs.irf, "default");
  const binflow::science::SourceModel model;
  const auto profile = binflow::science::TimeProfile::flare(4.0, 2500.0, 400.0);
  const binflow::science::Simulator simulator(obs, response, model, profile, 45.0);
  const auto summary =
      binflow::science::simulate_to_file(path, obs, simulator, 11, 2, world(), {{"seed", "11"}});
  MPI_Barrier(MPI_COMM_WORLD);
  const Events expected =
      binflow::science::simulate_events(obs, response, model, profile, 11, 45.0, 1);
  const EventFileReader reader(path);
  EXPECT_EQ(summary.events, reader.size());
  EXPECT_EQ(static_cast<std::int64_t>(summary.source + summary.background), summary.events);
  EXPECT_EQ(summary.slices, simulator.slices());
  EXPECT_GT(summary.expected_source, 1000.0);
  expect_same(reader.read_time_range(-inf, inf), expected);
  MPI_Barrier(MPI_COMM_WORLD);
  if (world_rank() == 0) fs::remove_all(dir);
}

TEST(EventWriter, UncommittedWriterLeavesNothing) {
  const std::string dir = shared_dir("abandoned");
  const std::string path = dir + "/never.h5";
  const Observation obs = binflow::science::default_observation(1800.0);
  {
    // Every rank's producer comes up short: all throw before the first collective write.
    EventFileWriter writer(path, obs, std::int64_t{10} * world_size(), world());
    EXPECT_THROW(writer.write_rows(std::int64_t{10} * world_rank(), 10, [] { return rows(0, 3); }),
                 binflow::InternalError);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  EXPECT_TRUE(files_in(dir).empty());
  MPI_Barrier(MPI_COMM_WORLD);
  if (world_rank() == 0) fs::remove_all(dir);
}

}  // namespace
