#pragma once
// MPI start-up and shut-down, communicator ownership, and the run's process geometry.
#include <mpi.h>

#include <array>
#include <cstdint>
#include <functional>
#include <source_location>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace binflow {

/// Throws IoError naming the MPI call and its call site unless rc == MPI_SUCCESS.
void check_mpi(int rc, std::string_view call,
               std::source_location where = std::source_location::current());

namespace detail {
/// The MPI datatype of an arithmetic C++ type (for reductions).
template <class T>
MPI_Datatype mpi_datatype() {
  if constexpr (std::is_same_v<T, double>) return MPI_DOUBLE;
  if constexpr (std::is_same_v<T, int>) return MPI_INT;
  if constexpr (std::is_same_v<T, std::int64_t>) return MPI_INT64_T;
  if constexpr (std::is_same_v<T, std::uint64_t>) return MPI_UINT64_T;
  static_assert(std::is_same_v<T, double> || std::is_same_v<T, int> ||
                    std::is_same_v<T, std::int64_t> || std::is_same_v<T, std::uint64_t>,
                "no MPI datatype for this type");
}
template <class T>
concept Reducible = std::is_same_v<T, double> || std::is_same_v<T, int> ||
    std::is_same_v<T, std::int64_t> || std::is_same_v<T, std::uint64_t>;
}  // namespace detail

/// Move-only owner (or borrower) of an MPI communicator.
/// Owned communicators get MPI_ERRORS_RETURN so that check_mpi can fire.
///
/// The collectives below are the only MPI calls outside the framework's executor and
/// runtime: every rank of the communicator calls them, in the same order. Rank 0 is the
/// root. On a communicator of one rank they make no MPI call at all, so a nested run may
/// use them on a thread that must not call MPI (MPI_THREAD_FUNNELED).
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

  /// Collective: rank 0's `text` on every rank.
  void broadcast(std::string& text) const;
  /// Collective: rank 0's `value` on every rank.
  template <class T>
  requires std::is_trivially_copyable_v<T>
  void broadcast(T& value) const { broadcast_bytes(&value, sizeof(T)); }
  /// Collective: rank 0's `values` (length and elements) on every rank.
  template <class T>
  requires std::is_trivially_copyable_v<T>
  void broadcast(std::vector<T>& values) const {
    auto n = static_cast<std::uint64_t>(values.size());
    broadcast(n);
    values.resize(static_cast<std::size_t>(n));
    broadcast_bytes(values.data(), values.size() * sizeof(T));
  }
  /// Collective: the sum over the ranks, on every rank.
  template <detail::Reducible T>
  [[nodiscard]] T sum(T value) const {
    reduce_all(&value, 1, detail::mpi_datatype<T>(), MPI_SUM);
    return value;
  }
  /// Collective: the element-wise sum over the ranks, on every rank.
  template <detail::Reducible T, std::size_t N>
  [[nodiscard]] std::array<T, N> sum(std::array<T, N> values) const {
    reduce_all(values.data(), static_cast<int>(N), detail::mpi_datatype<T>(), MPI_SUM);
    return values;
  }
  /// Collective: the maximum over the ranks, on every rank.
  template <detail::Reducible T>
  [[nodiscard]] T max(T value) const {
    reduce_all(&value, 1, detail::mpi_datatype<T>(), MPI_MAX);
    return value;
  }
  /// Collective: the sum of `value` over the ranks below this one; 0 on rank 0 (where
  /// MPI_Exscan leaves the result undefined).
  template <detail::Reducible T>
  [[nodiscard]] T exclusive_sum(T value) const {
    T out{};
    exclusive_sum_of(&value, &out, detail::mpi_datatype<T>());
    return rank_ == 0 ? T{} : out;
  }
  /// Collective: every rank's `text`, in rank order, on every rank.
  [[nodiscard]] std::vector<std::string> all_gather(const std::string& text) const;
  /// Collective: every rank's `text`, in rank order, on rank 0 (empty elsewhere).
  [[nodiscard]] std::vector<std::string> gather(const std::string& text) const;
  /// Collective: every rank's `value`, in rank order, on rank 0 (empty elsewhere).
  template <class T>
  requires std::is_trivially_copyable_v<T>
  [[nodiscard]] std::vector<T> gather(const T& value) const {
    std::vector<T> out(rank_ == 0 ? static_cast<std::size_t>(size_) : 0);
    gather_bytes(&value, sizeof(T), out.data());
    return out;
  }
  /// Collective: runs `check` (input validation that reads files, say) on rank 0 only; if
  /// it throws, every rank throws AgreedError with rank 0's message and exit status, so
  /// the run ends with one message and no MPI_Abort. On one rank, runs it directly.
  void agree_on_root(const std::function<void()>& check) const;

  [[nodiscard]] MPI_Comm get() const { return comm_; }
  [[nodiscard]] int rank() const { return rank_; }
  [[nodiscard]] int size() const { return size_; }
  [[nodiscard]] bool is_root() const { return rank_ == 0; }

private:
  Communicator(MPI_Comm comm, bool owned);
  Communicator() = default;
  void broadcast_bytes(void* data, std::size_t bytes) const;
  void reduce_all(void* data, int count, MPI_Datatype type, MPI_Op op) const;
  void exclusive_sum_of(const void* value, void* out, MPI_Datatype type) const;
  void gather_bytes(const void* value, std::size_t bytes, void* out) const;
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
