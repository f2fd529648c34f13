#pragma once
// Private: the messages of one map between rank 0 and the other ranks ("workers"), each
// message's encoder and decoder side by side, on the map's private communicator.
//
//   worker -> rank 0   report    [want_work u8][interrupted u8][n u64][n completed bins]
//   rank 0 -> worker   assign    [first i64][count i64]: positions first..first+count-1 of
//                                the pending list; count 0 = no more work (dynamic only)
//   rank 0 -> worker   stop      (empty) stop taking bins: a signal or max_failures
//   worker -> rank 0   finished  [interrupted u8][busy f64][bins i64][peak_rss_kib i64]: the
//                                worker's last report has been sent
//   rank 0 -> worker   release   (empty) every message of the map has been received
//
// A worker under the dynamic schedule keeps one report with want_work in flight and gets
// exactly one assign for each; rank 0 answers every such request, with count 0 once it is
// stopping. A worker drains stops until its release, so no message outlives the map.
#include <mpi.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "binflow/checkpoint.hpp"
#include "binflow/runtime.hpp"
#include "serialize.hpp"

namespace binflow::detail {

enum class Tag : int { report = 1, assign = 2, stop = 3, finished = 4, release = 5 };

/// A message received by rank 0: its source, tag and bytes.
struct Message {
  int source = 0;
  Tag tag = Tag::report;
  std::string bytes;
};

/// Point-to-point transport of one map: the only MPI calls of the executor. Main thread.
class Channel {
public:
  explicit Channel(const Communicator& comm) : comm_(comm.get()) {}

  void send(int dest, Tag tag, const std::string& bytes) const {
    check_mpi(MPI_Send(bytes.data(), static_cast<int>(bytes.size()), MPI_BYTE, dest,
                       static_cast<int>(tag), comm_),
              "MPI_Send");
  }
  /// The next message from any rank, if one has arrived.
  [[nodiscard]] std::optional<Message> poll() const {
    int flag = 0;
    MPI_Status status{};
    check_mpi(MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, comm_, &flag, &status), "MPI_Iprobe");
    if (flag == 0) return std::nullopt;
    return receive(status);
  }
  /// Waits for the next message from `source` (any tag).
  [[nodiscard]] Message wait_from(int source) const {
    MPI_Status status{};
    check_mpi(MPI_Probe(source, MPI_ANY_TAG, comm_, &status), "MPI_Probe");
    return receive(status);
  }
  /// Whether `tag` from `source` has arrived; receives it if so.
  [[nodiscard]] bool take_if_arrived(int source, Tag tag) const {
    int flag = 0;
    MPI_Status status{};
    check_mpi(MPI_Iprobe(source, static_cast<int>(tag), comm_, &flag, &status), "MPI_Iprobe");
    if (flag != 0) (void)receive(status);
    return flag != 0;
  }

  /// A send posted now and completed later (a worker's report): its bytes stay here until
  /// then. A blocking send of a report larger than the eager limit waited until rank 0's
  /// service thread woke up to receive it: 1-3 ms at every chunk, 15 % of a worker's time
  /// on 0.1 ms light-curve bins.
  class Outgoing {
  public:
    Outgoing() = default;
    Outgoing(const Outgoing&) = delete;
    Outgoing& operator=(const Outgoing&) = delete;
    ~Outgoing() {
      if (request_ != MPI_REQUEST_NULL) MPI_Wait(&request_, MPI_STATUS_IGNORE);
    }
    /// Waits until the last send posted from here has left its buffer.
    void complete() {
      if (request_ != MPI_REQUEST_NULL)
        check_mpi(MPI_Wait(&request_, MPI_STATUS_IGNORE), "MPI_Wait");
    }

  private:
    friend class Channel;
    MPI_Request request_ = MPI_REQUEST_NULL;
    std::string bytes_;
  };
  /// Completes `out`'s previous send, then posts this one (messages to one rank are matched
  /// in the order they are posted, blocking or not).
  void post_send(int dest, Tag tag, std::string bytes, Outgoing& out) const {
    out.complete();
    out.bytes_ = std::move(bytes);
    check_mpi(MPI_Isend(out.bytes_.data(), static_cast<int>(out.bytes_.size()), MPI_BYTE, dest,
                        static_cast<int>(tag), comm_, &out.request_),
              "MPI_Isend");
  }

  /// A receive posted now and completed by wait() (the worker's prefetched assignment).
  class Pending {
  public:
    Pending() = default;
    Pending(const Pending&) = delete;
    Pending& operator=(const Pending&) = delete;
    /// The assignment's two numbers, once it has arrived.
    const std::int64_t* wait() {
      check_mpi(MPI_Wait(&request_, MPI_STATUS_IGNORE), "MPI_Wait");
      return values_;
    }
    [[nodiscard]] bool active() const { return request_ != MPI_REQUEST_NULL; }

  private:
    friend class Channel;
    MPI_Request request_ = MPI_REQUEST_NULL;
    std::int64_t values_[2] = {0, 0};
  };
  void post_assign_receive(Pending& pending) const {
    check_mpi(MPI_Irecv(pending.values_, 2, MPI_INT64_T, 0, static_cast<int>(Tag::assign), comm_,
                        &pending.request_),
              "MPI_Irecv");
  }
  /// Assignments travel as two int64 (the receive is posted before the reply is due).
  void send_assign(int dest, std::int64_t first, std::int64_t count) const {
    const std::int64_t values[2] = {first, count};
    check_mpi(MPI_Send(values, 2, MPI_INT64_T, dest, static_cast<int>(Tag::assign), comm_),
              "MPI_Send");
  }

private:
  [[nodiscard]] Message receive(const MPI_Status& probed) const {
    int count = 0;
    check_mpi(MPI_Get_count(&probed, MPI_BYTE, &count), "MPI_Get_count");
    Message m{probed.MPI_SOURCE, static_cast<Tag>(probed.MPI_TAG),
              std::string(static_cast<std::size_t>(count), '\0')};
    check_mpi(MPI_Recv(m.bytes.data(), count, MPI_BYTE, probed.MPI_SOURCE, probed.MPI_TAG, comm_,
                       MPI_STATUS_IGNORE),
              "MPI_Recv");
    return m;
  }
  MPI_Comm comm_;
};

// --- report ---------------------------------------------------------------------------
struct Report {
  bool want_work = false;
  bool interrupted = false;
  std::vector<CompletedBin> bins;
};

/// `body` holds `count` bins already encoded with put_completed (the worker batches them).
inline std::string encode_report(bool want_work, bool interrupted, std::uint64_t count,
                                 const std::string& body) {
  std::string out;
  ByteWriter w(out);
  w.put<std::uint8_t>(want_work ? 1 : 0);
  w.put<std::uint8_t>(interrupted ? 1 : 0);
  w.put<std::uint64_t>(count);
  out += body;
  return out;
}

inline Report decode_report(const std::string& bytes) {
  ByteReader r(bytes);
  Report report;
  report.want_work = r.get<std::uint8_t>() != 0;
  report.interrupted = r.get<std::uint8_t>() != 0;
  const auto count = r.get<std::uint64_t>();
  report.bins.reserve(static_cast<std::size_t>(count));
  for (std::uint64_t k = 0; k < count; ++k) report.bins.push_back(get_completed(r));
  return report;
}

// --- finished ---------------------------------------------------------------------------
struct Finished {
  bool interrupted = false;
  double busy = 0.0;
  std::int64_t bins = 0;
  std::int64_t peak_rss_kib = 0;
};

inline std::string encode_finished(const Finished& f) {
  std::string out;
  ByteWriter w(out);
  w.put<std::uint8_t>(f.interrupted ? 1 : 0);
  w.put<double>(f.busy);
  w.put<std::int64_t>(f.bins);
  w.put<std::int64_t>(f.peak_rss_kib);
  return out;
}

inline Finished decode_finished(const std::string& bytes) {
  ByteReader r(bytes);
  Finished f;
  f.interrupted = r.get<std::uint8_t>() != 0;
  f.busy = r.get<double>();
  f.bins = r.get<std::int64_t>();
  f.peak_rss_kib = r.get<std::int64_t>();
  return f;
}

// --- stop, release: no content ----------------------------------------------------------
inline std::string encode_signal() { return std::string(1, '\0'); }

}  // namespace binflow::detail
