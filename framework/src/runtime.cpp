#include "binflow/runtime.hpp"

#include <unistd.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "binflow/error.hpp"

namespace binflow {

void check_mpi(int rc, std::string_view call, std::source_location where) {
  if (rc == MPI_SUCCESS) return;
  std::array<char, MPI_MAX_ERROR_STRING> text{};
  int len = 0;
  if (MPI_Error_string(rc, text.data(), &len) != MPI_SUCCESS) len = 0;
  throw IoError(fmt::format("{} failed: {} ({}:{})", call, std::string_view(text.data(), len),
                            where.file_name(), where.line()));
}

Communicator::Communicator(MPI_Comm comm, bool owned) : comm_(comm), owned_(owned) {
  if (owned_)
    check_mpi(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
  check_mpi(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
  check_mpi(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
}

void Communicator::broadcast_bytes(void* data, std::size_t bytes) const {
  if (size_ == 1 || bytes == 0) return;
  check_mpi(MPI_Bcast(data, static_cast<int>(bytes), MPI_BYTE, 0, comm_), "MPI_Bcast");
}

void Communicator::broadcast(std::string& text) const {
  if (size_ == 1) return;
  auto n = static_cast<std::uint64_t>(text.size());
  broadcast(n);
  text.resize(static_cast<std::size_t>(n));
  broadcast_bytes(text.data(), text.size());
}

void Communicator::reduce_all(void* data, int count, MPI_Datatype type, MPI_Op op) const {
  if (size_ == 1) return;
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, data, count, type, op, comm_), "MPI_Allreduce");
}

void Communicator::exclusive_sum_of(const void* value, void* out, MPI_Datatype type) const {
  if (size_ == 1) return;
  check_mpi(MPI_Exscan(value, out, 1, type, MPI_SUM, comm_), "MPI_Exscan");
}

void Communicator::gather_bytes(const void* value, std::size_t bytes, void* out) const {
  if (size_ == 1) {
    std::memcpy(out, value, bytes);
    return;
  }
  check_mpi(MPI_Gather(value, static_cast<int>(bytes), MPI_BYTE, out, static_cast<int>(bytes),
                       MPI_BYTE, 0, comm_),
            "MPI_Gather");
}

namespace {

std::vector<int> displacements(const std::vector<int>& lengths) {
  std::vector<int> out(lengths.size(), 0);
  for (std::size_t i = 1; i < lengths.size(); ++i) out[i] = out[i - 1] + lengths[i - 1];
  return out;
}

std::vector<std::string> split_buffer(const std::vector<char>& buffer,
                                      const std::vector<int>& lengths) {
  std::vector<std::string> out;
  out.reserve(lengths.size());
  std::size_t offset = 0;
  for (const int len : lengths) {
    out.emplace_back(buffer.data() + offset, static_cast<std::size_t>(len));
    offset += static_cast<std::size_t>(len);
  }
  return out;
}

std::size_t total(const std::vector<int>& lengths) {
  std::size_t sum = 0;
  for (const int len : lengths) sum += static_cast<std::size_t>(len);
  return sum;
}

}  // namespace

std::vector<std::string> Communicator::all_gather(const std::string& text) const {
  if (size_ == 1) return {text};
  const int len = static_cast<int>(text.size());
  std::vector<int> lengths(static_cast<std::size_t>(size_));
  check_mpi(MPI_Allgather(&len, 1, MPI_INT, lengths.data(), 1, MPI_INT, comm_), "MPI_Allgather");
  std::vector<char> buffer(total(lengths) + 1);
  check_mpi(MPI_Allgatherv(text.data(), len, MPI_CHAR, buffer.data(), lengths.data(),
                           displacements(lengths).data(), MPI_CHAR, comm_),
            "MPI_Allgatherv");
  return split_buffer(buffer, lengths);
}

std::vector<std::string> Communicator::gather(const std::string& text) const {
  if (size_ == 1) return {text};
  const std::vector<int> lengths = gather(static_cast<int>(text.size()));
  std::vector<char> buffer(total(lengths) + 1);
  const std::vector<int> displs = displacements(lengths);
  check_mpi(MPI_Gatherv(text.data(), static_cast<int>(text.size()), MPI_CHAR, buffer.data(),
                        lengths.data(), displs.data(), MPI_CHAR, 0, comm_),
            "MPI_Gatherv");
  if (rank_ != 0) return {};
  return split_buffer(buffer, lengths);
}

void Communicator::agree_on_root(const std::function<void()>& check) const {
  if (size_ == 1) {
    try {
      check();
    } catch (const std::exception& e) {
      throw AgreedError(exit_status_of(e), e.what());
    }
    return;
  }
  int code = 0;
  std::string message;
  if (rank_ == 0) {
    try {
      check();
    } catch (const std::exception& e) {
      code = exit_status_of(e);
      message = e.what();
    }
  }
  broadcast(code);
  if (code == 0) return;
  broadcast(message);
  throw AgreedError(code, message);
}

Communicator Communicator::borrow(MPI_Comm comm) { return Communicator(comm, false); }

Communicator Communicator::self() {
  Communicator c;
  c.comm_ = MPI_COMM_SELF;
  return c;
}

Communicator Communicator::duplicate() const {
  MPI_Comm out = MPI_COMM_NULL;
  check_mpi(MPI_Comm_dup(comm_, &out), "MPI_Comm_dup");
  return Communicator(out, true);
}

Communicator Communicator::split_shared() const {
  MPI_Comm out = MPI_COMM_NULL;
  check_mpi(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &out),
            "MPI_Comm_split_type");
  return Communicator(out, true);
}

Communicator Communicator::split(int colour, int key) const {
  MPI_Comm out = MPI_COMM_NULL;
  check_mpi(MPI_Comm_split(comm_, colour, key, &out), "MPI_Comm_split");
  return Communicator(out, true);
}

Communicator::Communicator(Communicator&& other) noexcept
    : comm_(std::exchange(other.comm_, MPI_COMM_NULL)),
      owned_(std::exchange(other.owned_, false)),
      rank_(other.rank_),
      size_(other.size_) {}

Communicator& Communicator::operator=(Communicator&& other) noexcept {
  if (this != &other) {
    Communicator old(std::move(*this));
    comm_ = std::exchange(other.comm_, MPI_COMM_NULL);
    owned_ = std::exchange(other.owned_, false);
    rank_ = other.rank_;
    size_ = other.size_;
  }
  return *this;
}

Communicator::~Communicator() {
  if (!owned_ || comm_ == MPI_COMM_NULL) return;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Comm_free(&comm_);
}

Environment::Environment(int& argc, char**& argv, int required) {
  int initialized = 0;
  check_mpi(MPI_Initialized(&initialized), "MPI_Initialized");
  if (initialized) {
    check_mpi(MPI_Query_thread(&provided_), "MPI_Query_thread");
  } else {
    check_mpi(MPI_Init_thread(&argc, &argv, required, &provided_), "MPI_Init_thread");
    initialized_here_ = true;
  }
  // Errors on MPI_COMM_WORLD must come back as codes so that check_mpi reports them
  // with the call site instead of the library aborting with its own text.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  if (provided_ < required) {
    throw IoError(
        fmt::format("the MPI library grants thread level {} but binflow needs {} "
                    "(MPI_THREAD_FUNNELED = {})",
                    provided_, required, static_cast<int>(MPI_THREAD_FUNNELED)));
  }
}

Environment::~Environment() {
  if (!initialized_here_) return;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

void Environment::abort(int code) {
  int initialized = 0;
  int finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  int size = 1;
  if (initialized && !finalized) MPI_Comm_size(MPI_COMM_WORLD, &size);
  // A single process exits normally so that its exit status is the documented one;
  // with more ranks only MPI_Abort is sure to stop the others instead of letting them hang.
  if (size > 1) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

Runtime Runtime::create(Communicator comm) {
  Communicator node = comm.split_shared();
  std::array<char, 256> name{};
  if (gethostname(name.data(), name.size() - 1) != 0) name[0] = '\0';
  // Node count: local rank 0 of every node contributes 1.
  int mine = node.rank() == 0 ? 1 : 0;
  int nodes = 0;
  check_mpi(MPI_Allreduce(&mine, &nodes, 1, MPI_INT, MPI_SUM, comm.get()), "MPI_Allreduce");
  return Runtime{std::move(comm), std::move(node), nodes, std::string(name.data())};
}

Runtime Runtime::self() {
  std::array<char, 256> name{};
  if (gethostname(name.data(), name.size() - 1) != 0) name[0] = '\0';
  return Runtime{Communicator::self(), Communicator::self(), 1, std::string(name.data())};
}

}  // namespace binflow
