// Per-bin overhead of the executor with empty bins (one log line and a small record
// each), for every schedule, against a bare MPI master/worker loop measured in the
// same run. Prints medians of several repetitions. Run with 2 ranks:
//   mpirun -n 2 build/bin/bench_executor_overhead [bins] [repetitions]
#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "binflow/executor.hpp"

namespace {

using namespace binflow;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double time_map(Schedule schedule, std::int64_t bins) {
  RunContext ctx(Runtime::create(Communicator::borrow(MPI_COMM_WORLD)), ThreadBudget::nested(1),
                 RunSettings{schedule, 0, 2, 1}, [](std::string_view) {}, nullptr, false);
  const Schema schema{{"x", ColumnType::f64, "", ""}, {"k", ColumnType::i64, "", ""}};
  const BinPlan plan = BinPlan::trials(bins);
  MPI_Barrier(MPI_COMM_WORLD);
  const double start = MPI_Wtime();
  const MapResult result = ctx.map("bench", plan, schema, [](BinContext& bin) {
    bin.log().info("empty bin {}", bin.bin().index);
    return Row{static_cast<double>(bin.bin().index), bin.bin().index};
  });
  const double wall = MPI_Wtime() - start;
  if (ctx.is_root() && result.table.size() != static_cast<std::size_t>(bins)) std::abort();
  return wall;
}

// The reference: rank 0 only hands out task numbers, the others request one task at a
// time and compute a trivial result (no logging, no result shipping).
double time_bare_master_worker(std::int64_t tasks) {
  int rank = 0;
  int size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Barrier(MPI_COMM_WORLD);
  const double start = MPI_Wtime();
  if (rank == 0) {
    std::int64_t next = 0;
    int stopped = 0;
    while (stopped < size - 1) {
      double dummy = 0;
      MPI_Status status;
      MPI_Recv(&dummy, 1, MPI_DOUBLE, MPI_ANY_SOURCE, 0, MPI_COMM_WORLD, &status);
      const std::int64_t task = next < tasks ? next++ : -1;
      if (task < 0) ++stopped;
      MPI_Send(&task, 1, MPI_INT64_T, status.MPI_SOURCE, 1, MPI_COMM_WORLD);
    }
  } else {
    double acc = 0.0;
    while (true) {
      MPI_Send(&acc, 1, MPI_DOUBLE, 0, 0, MPI_COMM_WORLD);
      std::int64_t task = 0;
      MPI_Recv(&task, 1, MPI_INT64_T, 0, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      if (task < 0) break;
      acc += static_cast<double>(task);
    }
  }
  return MPI_Wtime() - start;
}

}  // namespace

int main(int argc, char** argv) {
  Environment env(argc, argv);
  const std::int64_t bins = argc > 1 ? std::atoll(argv[1]) : 200000;
  const int repetitions = argc > 2 ? std::atoi(argv[2]) : 5;
  int rank = 0;
  int size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  std::vector<double> bare;
  for (int r = 0; r < repetitions; ++r) bare.push_back(time_bare_master_worker(bins));
  const double bare_us = 1e6 * median(bare) / static_cast<double>(bins);
  if (rank == 0) {
    fmt::print("executor overhead: {} empty bins (one log line, two-column row), {} ranks, "
               "median of {}\n", bins, size, repetitions);
    fmt::print("  {:<28} {:>10.3f} us per task (wall / tasks)\n", "bare MPI master/worker", bare_us);
  }
  for (const Schedule schedule : {Schedule::static_block, Schedule::cyclic, Schedule::dynamic}) {
    std::vector<double> walls;
    for (int r = 0; r < repetitions; ++r) walls.push_back(time_map(schedule, bins));
    const double per_bin = 1e6 * median(walls) / static_cast<double>(bins);
    if (rank == 0) {
      fmt::print("  {:<28} {:>10.3f} us per bin (wall / bins); {:.3f} us rank-time per bin; "
                 "{:.2f}x the bare loop\n",
                 fmt::format("binflow {}", schedule_name(schedule)), per_bin, per_bin * size,
                 per_bin / bare_us);
    }
  }
  return 0;
}
