#pragma once
// MPI start-up and shut-down, communicator ownership, and the run's process geometry.
#include <mpi.h>

#include <source_location>
#include <string>
#include <string_view>

namespace binflow {

/// Throws IoError naming the MPI call and its call site unless rc == MPI_SUCCESS.
void check_mpi(int rc, std::string_view call,
               std::source_location where = std::source_location::current());

/// Move-only owner (or borrower) of an MPI communicator.
/// Owned communicators get MPI_ERRORS_RETURN so that check_mpi can fire.
class Communicator {
public:
  /// Wraps a communicator binflow does not own (MPI_COMM_WORLD, MPI_COMM_SELF).
  static Communicator borrow(MPI_Comm comm);
  /// MPI_COMM_SELF without any MPI call (its rank and size are known), so that a nested
  /// run can be set up on a thread that may not call MPI. Thread-safe.
  static Communicator self();
  /// Collective: MPI_Comm_dup, owned by the result.
  [[nodiscard]] Communicator duplicate() const;
  /// Collective: the ranks sharing this rank's node (MPI_COMM_TYPE_SHARED).
  [[nodiscard]] Communicator split_shared() const;
  /// Collective: MPI_Comm_split by colour and key.
  [[nodiscard]] Communicator split(int colour, int key) const;

  Communicator(Communicator&& other) noexcept;
  Communicator& operator=(Communicator&& other) noexcept;
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;
  ~Communicator();

  [[nodiscard]] MPI_Comm get() const { return comm_; }
  [[nodiscard]] int rank() const { return rank_; }
  [[nodiscard]] int size() const { return size_; }
  [[nodiscard]] bool is_root() const { return rank_ == 0; }

private:
  Communicator(MPI_Comm comm, bool owned);
  Communicator() = default;
  MPI_Comm comm_ = MPI_COMM_NULL;
  bool owned_ = false;
  int rank_ = 0;
  int size_ = 1;
};

/// The one object in main() that starts and stops MPI. Requests `required` thread
/// support and throws IoError if the library grants less; finalizes only what it
/// initialized. Works without mpirun (singleton init).
class Environment {
public:
  Environment(int& argc, char**& argv, int required = MPI_THREAD_FUNNELED);
  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;
  ~Environment();

  [[nodiscard]] int thread_level() const { return provided_; }
  /// Kills every rank of the job with `code` (used when an exception escapes on one rank).
  [[noreturn]] static void abort(int code);

private:
  bool initialized_here_ = false;
  int provided_ = MPI_THREAD_SINGLE;
};

/// Process geometry of a run: the communicator the run uses and its node-local split.
struct Runtime {
  Communicator comm;   ///< the run's communicator (world for a top-level tool, self when nested)
  Communicator node;   ///< ranks of `comm` on this node
  int node_count = 1;  ///< number of distinct nodes in `comm`
  std::string host;

  /// Collective over `comm`.
  static Runtime create(Communicator comm);
  /// The geometry of a nested invocation: MPI_COMM_SELF, one node, one rank.
  static Runtime self();

  [[nodiscard]] int rank() const { return comm.rank(); }
  [[nodiscard]] int size() const { return comm.size(); }
  [[nodiscard]] int local_rank() const { return node.rank(); }
  [[nodiscard]] int local_size() const { return node.size(); }
};

}  // namespace binflow
