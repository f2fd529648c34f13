#include "binflow/executor.hpp"

#include <sys/prctl.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <ctime>
#include <exception>
#include <iterator>
#include <mutex>
#include <optional>
#include <thread>

#include <fmt/format.h>

#include "binflow/checkpoint.hpp"
#include "binflow/error.hpp"
#include "serialize.hpp"

namespace binflow {

namespace {

// ---------------------------------------------------------------------------------
// Stop flag: the only global state, because a signal handler can reach nothing else.
std::atomic<bool> stop_flag{false};
static_assert(std::atomic<bool>::is_always_lock_free, "the stop flag must be signal-safe");

extern "C" void on_stop_signal(int /*signal*/) { stop_flag.store(true, std::memory_order_relaxed); }

// Message tags on the map's private communicator.
enum Tag : int {
  tag_report = 1,    // worker -> root: [want_work u8][interrupted u8][n u64][n bins]
  tag_assign = 2,    // root -> worker: [first position i64][count i64]; count 0 = no more
  tag_stop = 3,      // root -> worker (static/cyclic): stop taking bins
  tag_finished = 4,  // worker -> root: [interrupted u8][busy f64][bins i64]
  tag_release = 5,   // root -> worker: every message of the map has been received
};

constexpr double chunk_target_seconds = 10e-3;  // see the Dispatcher
constexpr double report_interval_seconds = 0.05;
constexpr std::size_t report_max_bytes = std::size_t{1} << 20;

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// getrusage costs a system call; the peak moves slowly, so it is read at most every 10 ms.
std::int64_t peak_rss_kib(double now) {
  thread_local double last = -1.0;
  thread_local std::int64_t peak = 0;
  if (now - last >= 0.01) {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    peak = usage.ru_maxrss;
    last = now;
  }
  return peak;
}

void send_bytes(const std::string& bytes, int dest, int tag, MPI_Comm comm) {
  check_mpi(MPI_Send(bytes.data(), static_cast<int>(bytes.size()), MPI_BYTE, dest, tag, comm),
            "MPI_Send");
}

std::string receive_bytes(const MPI_Status& probed, MPI_Comm comm) {
  int count = 0;
  check_mpi(MPI_Get_count(&probed, MPI_BYTE, &count), "MPI_Get_count");
  std::string bytes(static_cast<std::size_t>(count), '\0');
  check_mpi(MPI_Recv(bytes.data(), count, MPI_BYTE, probed.MPI_SOURCE, probed.MPI_TAG, comm,
                     MPI_STATUS_IGNORE),
            "MPI_Recv");
  return bytes;
}

struct Chunk {
  std::int64_t first = 0;
  std::int64_t count = 0;
};

// Positions (into the plan) that this run still has to compute, minus resumed ones.
using Positions = std::vector<std::int64_t>;

Positions static_share(const Positions& pending, Schedule schedule, int rank, int size) {
  Positions mine;
  const auto n = static_cast<std::int64_t>(pending.size());
  if (schedule == Schedule::cyclic) {
    for (std::int64_t i = rank; i < n; i += size)
      mine.push_back(pending[static_cast<std::size_t>(i)]);
  } else {
    const std::int64_t lo = n * rank / size;
    const std::int64_t hi = n * (rank + 1) / size;
    mine.assign(pending.begin() + lo, pending.begin() + hi);
  }
  return mine;
}

// ---------------------------------------------------------------------------------
// Runs single bins: header line, random stream, timing, exception capture.
class BinRunner {
public:
  BinRunner(const BinPlan& plan, const Schema& schema, const BinFunction& fn,
            const ThreadBudget& budget, const RunSettings& settings, int rank, double t0)
      : plan_(plan),
        schema_(schema),
        fn_(fn),
        budget_(budget),
        settings_(settings),
        rank_(rank),
        t0_(t0),
        log_(settings.chatter) {}

  CompletedBin run(std::int64_t position) {
    const Bin& bin = plan_[static_cast<std::size_t>(position)];
    log_.begin(
        plan_.kind() == BinKind::trial
            ? fmt::format("bin {}", bin.index)
            : fmt::format("bin {} [{:.10g}, {:.10g}) {}", bin.index, bin.lo, bin.hi, plan_.unit()));
    BinContext ctx(bin, log_.logger(),
                   RngStream(settings_.seed, static_cast<std::uint64_t>(bin.index)), budget_);
    CompletedBin out;
    out.position = position;
    const double start = now_seconds();
    try {
      out.row = fn_(ctx);
      schema_.check(out.row);
      out.status = ctx.status();
    } catch (const UsageError& e) {
      fail(out, e.what());
      out.bad_input = true;
    } catch (const AgreedError& e) {
      fail(out, e.what());
      out.bad_input = e.status() == exit_status::usage;
    } catch (const std::exception& e) {
      fail(out, e.what());
    } catch (...) {
      fail(out, "unknown exception");
    }
    const double end = now_seconds();
    // One CPU-clock read per bin (it is a system call that locks the thread group): a
    // bin's CPU time runs from the end of the previous bin on this thread, so it also
    // holds the executor's own work between the two bins.
    const double cpu_end = process_cpu_seconds();
    out.stats = BinStats{bin.index,
                         rank_,
                         start - t0_,
                         end - t0_,
                         end - start,
                         cpu_end - cpu_mark_,
                         budget_.threads(),
                         peak_rss_kib(end),
                         false};
    cpu_mark_ = cpu_end;
    log_.logger().debug("{}bin {} ran on rank {} with {} threads: wall {:.6f} s, cpu {:.6f} s",
                        run_marker, bin.index, rank_, budget_.threads(), out.stats.wall,
                        out.stats.cpu);
    out.log = log_.take();
    busy_ += out.stats.wall;
    ++bins_;
    return out;
  }

  [[nodiscard]] double busy() const { return busy_; }
  [[nodiscard]] std::int64_t bins() const { return bins_; }

private:
  void fail(CompletedBin& out, std::string_view what) {
    out.status = "failed";
    out.message = std::string(what);
    out.row = schema_.blank_row();
    log_.logger().error("bin {} failed: {}", plan_[static_cast<std::size_t>(out.position)].index,
                        what);
  }

  const BinPlan& plan_;
  const Schema& schema_;
  const BinFunction& fn_;
  const ThreadBudget& budget_;
  const RunSettings& settings_;
  int rank_;
  double t0_;
  BinLog log_;
  double cpu_mark_ = process_cpu_seconds();
  double busy_ = 0.0;
  std::int64_t bins_ = 0;
};

// ---------------------------------------------------------------------------------
// Rank 0: receives completed bins in any order; writes log blocks in order, appends
// to the checkpoint, and keeps the outcomes for the result table. Main thread only.
class Collector {
public:
  Collector(std::string name, std::size_t plan_size, const RunSettings& settings, LogTarget target,
            Checkpoint* checkpoint)
      : name_(std::move(name)),
        outcomes_(plan_size),
        settings_(settings),
        log_(std::move(target)),
        checkpoint_(checkpoint) {}

  // Bins completed by an earlier run; returns the positions still to do.
  Positions resume(std::size_t plan_size) {
    if (checkpoint_ != nullptr) {
      for (CompletedBin& bin : checkpoint_->completed(name_)) {
        const auto pos = static_cast<std::size_t>(bin.position);
        if (pos >= plan_size) continue;
        bin.stats.resumed = true;
        outcomes_[pos] = std::move(bin);
        ++resumed_;
      }
    }
    Positions pending;
    for (std::size_t pos = 0; pos < plan_size; ++pos) {
      if (!outcomes_[pos]) pending.push_back(static_cast<std::int64_t>(pos));
    }
    return pending;
  }

  // Resumed bins write their log blocks again, so the log reads like an uninterrupted run's.
  void replay_logs() {
    for (std::size_t pos = 0; pos < outcomes_.size(); ++pos) {
      if (outcomes_[pos]) log_.submit(pos, outcomes_[pos]->log);
    }
  }

  void accept(CompletedBin bin) {
    if (bin.status == "failed") ++failed_;
    if (bin.bad_input && input_error_.empty()) input_error_ = bin.message;
    wall_sum_ += bin.stats.wall;
    ++accepted_;
    if (checkpoint_ != nullptr) {
      bin.map = name_;
      checkpoint_->append(bin);
    }
    const auto pos = static_cast<std::size_t>(bin.position);
    log_.submit(pos, std::move(bin.log));
    bin.log.clear();
    outcomes_[pos] = std::move(bin);
  }

  void flush_if_due() {
    if (checkpoint_ != nullptr) checkpoint_->flush_if_due();
  }

  void finish(bool incomplete) {
    if (incomplete) log_.flush_remaining();
    if (checkpoint_ != nullptr) checkpoint_->flush();
  }

  // Bad input stops the run at once: every further bin would fail the same way.
  [[nodiscard]] bool failure_limit_reached() const {
    return (settings_.max_failures > 0 && failed_ >= settings_.max_failures) ||
           !input_error_.empty();
  }
  [[nodiscard]] const std::string& input_error() const { return input_error_; }
  [[nodiscard]] double mean_bin_seconds() const {
    return accepted_ == 0 ? 0.0 : wall_sum_ / static_cast<double>(accepted_);
  }
  [[nodiscard]] std::int64_t failed() const { return failed_; }
  [[nodiscard]] std::int64_t resumed() const { return resumed_; }

  // Moves the outcomes into the result: called once, at the end of the map.
  void fill(MapResult& result, const BinPlan& plan, const Schema& schema) {
    Schema full;
    full.add({"bin", ColumnType::i64, "", "global bin index"});
    for (const Column& c : schema.columns()) full.add(c);
    full.add({"status", ColumnType::str, "", "ok, failed, or a tool-defined status such as empty"});
    full.add({"message", ColumnType::str, "", "why the bin failed (empty otherwise)"});
    Table table(std::move(full));
    result.bins.reserve(outcomes_.size());
    for (std::size_t pos = 0; pos < outcomes_.size(); ++pos) {
      auto& bin = outcomes_[pos];
      if (!bin) continue;
      Row row;
      row.reserve(bin->row.size() + 3);
      row.emplace_back(plan[pos].index);
      std::move(bin->row.begin(), bin->row.end(), std::back_inserter(row));
      row.emplace_back(std::move(bin->status));
      row.emplace_back(std::move(bin->message));
      table.append(std::move(row));
      result.bins.push_back(bin->stats);
      bin.reset();
    }
    result.table = std::move(table);
  }

private:
  std::string name_;
  std::vector<std::optional<CompletedBin>> outcomes_;
  const RunSettings& settings_;
  OrderedLog log_;
  Checkpoint* checkpoint_;
  std::int64_t failed_ = 0;
  std::int64_t accepted_ = 0;
  std::int64_t resumed_ = 0;
  double wall_sum_ = 0.0;
  std::string input_error_;
};

// ---------------------------------------------------------------------------------
// Rank 0's hand-out of dynamic chunks, shared by its compute thread and its main
// thread (which serves the other ranks). Guided self-scheduling: a chunk is ~10 ms of
// work at the mean bin time seen so far, never more than remaining / (2 ranks). Shorter
// chunks interleave the ranks' bins finely, and ranks that read neighbouring events from
// one file then lose their chunk-cache locality (2 ms chunks: 0.3 ms per light-curve bin
// instead of 0.22); the guided cap keeps the tail short for load balance.
class Dispatcher {
public:
  Dispatcher(Positions pending, int ranks) : pending_(std::move(pending)), ranks_(ranks) {}

  Chunk take(double mean_bin_seconds) {
    std::lock_guard lock(mutex_);
    const auto n = static_cast<std::int64_t>(pending_.size());
    if (stopped_ || next_ >= n) return {next_, 0};
    const std::int64_t remaining = n - next_;
    std::int64_t count = 1;
    if (mean_bin_seconds > 0.0) {
      const double wanted = std::ceil(chunk_target_seconds / mean_bin_seconds);
      const std::int64_t guided = std::max<std::int64_t>(1, remaining / (2 * ranks_));
      count =
          std::clamp<std::int64_t>(static_cast<std::int64_t>(std::min(wanted, 1e12)), 1, guided);
    }
    const Chunk chunk{next_, count};
    next_ += count;
    return chunk;
  }

  void stop() {
    std::lock_guard lock(mutex_);
    stopped_ = true;
  }

  [[nodiscard]] std::int64_t position(std::int64_t k) const {
    return pending_[static_cast<std::size_t>(k)];
  }

private:
  std::mutex mutex_;
  Positions pending_;
  int ranks_;
  std::int64_t next_ = 0;
  bool stopped_ = false;
};

// ---------------------------------------------------------------------------------
// Rank > 0: batches completed bins into report messages.
class Reporter {
public:
  Reporter(MPI_Comm comm) : comm_(comm) {}

  void add(const CompletedBin& bin) {
    if (count_ == 0) started_ = now_seconds();
    detail::ByteWriter w(body_);
    detail::put_completed(w, bin);
    ++count_;
  }

  [[nodiscard]] bool due() const {
    return count_ > 0 && (body_.size() >= report_max_bytes ||
                          now_seconds() - started_ >= report_interval_seconds);
  }

  void send(bool want_work, bool interrupted) {
    std::string message;
    detail::ByteWriter w(message);
    w.put<std::uint8_t>(want_work ? 1 : 0);
    w.put<std::uint8_t>(interrupted ? 1 : 0);
    w.put<std::uint64_t>(count_);
    message += body_;
    send_bytes(message, 0, tag_report, comm_);
    body_.clear();
    count_ = 0;
  }

  void flush(bool interrupted) {
    if (count_ > 0 || interrupted) send(false, interrupted);
  }

private:
  MPI_Comm comm_;
  std::string body_;
  std::uint64_t count_ = 0;
  double started_ = 0.0;
};

// ---------------------------------------------------------------------------------
// One map over a plan on the map's private communicator.
class Map {
public:
  Map(const Communicator& comm, const BinPlan& plan, const Schema& schema, const BinFunction& fn,
      const ThreadBudget& budget, const RunSettings& settings, Positions pending)
      : comm_(comm),
        plan_(plan),
        schema_(schema),
        fn_(fn),
        budget_(budget),
        settings_(settings),
        pending_(std::move(pending)),
        t0_(now_seconds()),
        runner_(plan, schema, fn, budget, settings, comm.rank(), t0_) {}

  MapResult run_root(Collector& collector);
  void run_worker();

private:
  // Rank 0 ---------------------------------------------------------------------
  void run_inline(Collector& collector);
  void serve_static(Collector& collector);
  void serve_dynamic(Collector& collector);
  bool service_step(Collector& collector, Dispatcher* dispatcher);
  void wait_for_workers(Collector& collector, Dispatcher* dispatcher);
  void compute_on_root(Dispatcher& dispatcher);
  bool handle_message(Collector& collector, Dispatcher* dispatcher);
  void accept_report(Collector& collector, const std::string& bytes, int source,
                     Dispatcher* dispatcher);
  void broadcast_stop(Dispatcher* dispatcher);
  // Rank > 0 -------------------------------------------------------------------
  void worker_static(const Positions& mine, Reporter& reporter);
  void worker_dynamic(Reporter& reporter);
  bool root_said_stop(double& next_check);
  void finish_worker(bool interrupted);

  const Communicator& comm_;
  const BinPlan& plan_;
  const Schema& schema_;
  const BinFunction& fn_;
  const ThreadBudget& budget_;
  const RunSettings& settings_;
  // Plan positions still to run, identical on every rank; dynamic chunks index it.
  const Positions pending_;
  double t0_;
  BinRunner runner_;

  // Rank 0 state shared between its main thread and its compute thread.
  std::mutex done_mutex_;
  std::vector<CompletedBin> done_;  // completed by the compute thread, not yet collected
  std::atomic<bool> compute_finished_{false};
  std::atomic<bool> stopping_{false};
  std::exception_ptr compute_error_;
  std::vector<bool> worker_finished_;
  std::vector<RankStats> rank_stats_;
  bool interrupted_ = false;
  bool stopped_early_ = false;
  bool stop_sent_ = false;
};

MapResult Map::run_root(Collector& collector) {
  rank_stats_.assign(static_cast<std::size_t>(comm_.size()), RankStats{});
  for (int r = 0; r < comm_.size(); ++r) rank_stats_[static_cast<std::size_t>(r)].rank = r;
  if (comm_.size() == 1) {
    run_inline(collector);
  } else {
    worker_finished_.assign(static_cast<std::size_t>(comm_.size()), false);
    worker_finished_[0] = true;
    if (settings_.schedule == Schedule::dynamic) {
      serve_dynamic(collector);
    } else {
      serve_static(collector);
    }
  }
  MapResult result;
  result.wall = now_seconds() - t0_;
  rank_stats_[0].busy = runner_.busy();
  rank_stats_[0].bins = runner_.bins();
  for (RankStats& r : rank_stats_) r.idle = std::max(0.0, result.wall - r.busy);
  result.ranks = rank_stats_;
  result.interrupted = interrupted_;
  result.stopped_early = stopped_early_;
  result.failed = collector.failed();
  return result;
}

// One rank: the bins run in the calling thread, no extra thread is started (this is
// also the path of every nested invocation).
void Map::run_inline(Collector& collector) {
  for (const std::int64_t pos : pending_) {
    if (stop_requested()) {
      interrupted_ = true;
      break;
    }
    if (collector.failure_limit_reached()) {
      stopped_early_ = true;
      break;
    }
    collector.accept(runner_.run(pos));
    collector.flush_if_due();
  }
}

// Several ranks, static shares: nobody waits for answers from rank 0, so its bins run
// in this thread and messages are read between them, at most every millisecond.
void Map::serve_static(Collector& collector) {
  const Positions mine = static_share(pending_, settings_.schedule, 0, comm_.size());
  double next_poll = 0.0;
  for (const std::int64_t pos : mine) {
    if (stopping_) break;
    collector.accept(runner_.run(pos));
    const double now = now_seconds();
    if (now >= next_poll || stop_requested() || collector.failure_limit_reached()) {
      service_step(collector, nullptr);
      next_poll = now + 1e-3;
    }
  }
  compute_finished_ = true;
  wait_for_workers(collector, nullptr);
}

// Several ranks, dynamic: rank 0's bins run in a compute thread while this thread (the
// only one that calls MPI, so MPI_THREAD_FUNNELED suffices) answers requests and
// collects results; a long bin on rank 0 never delays the other ranks' next chunk.
void Map::serve_dynamic(Collector& collector) {
  Dispatcher dispatcher(pending_, comm_.size());
  std::thread compute([this, &dispatcher] { compute_on_root(dispatcher); });
  try {
    wait_for_workers(collector, &dispatcher);
  } catch (...) {
    stopping_ = true;
    compute.join();
    throw;
  }
  compute.join();
  if (compute_error_) std::rethrow_exception(compute_error_);
}

// Messages, rank 0's own completed bins, checkpoint flushes and stop conditions.
bool Map::service_step(Collector& collector, Dispatcher* dispatcher) {
  bool active = false;
  while (handle_message(collector, dispatcher)) active = true;
  std::vector<CompletedBin> local;
  {
    std::lock_guard lock(done_mutex_);
    local.swap(done_);
  }
  for (CompletedBin& bin : local) collector.accept(std::move(bin));
  collector.flush_if_due();
  if (!stopping_ && (stop_requested() || collector.failure_limit_reached())) {
    (stop_requested() ? interrupted_ : stopped_early_) = true;
    broadcast_stop(dispatcher);
  }
  // Only other ranks' messages count as activity: rank 0's own results can wait for the
  // next wake-up, and waking up per local bin would preempt the compute thread that
  // shares this thread's core (measured: 0.2 -> 0.5 ms per light-curve bin).
  return active;
}

void Map::wait_for_workers(Collector& collector, Dispatcher* dispatcher) {
  // Sleep while idle: Open MPI's blocking receive would spin on a core that compute
  // threads need. With a 1 us timer slack the sleeps are as short as asked; they grow
  // from 10 us to 0.5 ms, well inside the ~10 ms of work a prefetched chunk holds.
  prctl(PR_SET_TIMERSLACK, 1000UL, 0UL, 0UL, 0UL);
  constexpr auto shortest = std::chrono::microseconds(10);
  constexpr auto longest = std::chrono::microseconds(500);
  auto sleep = shortest;
  while (true) {
    const bool active = service_step(collector, dispatcher);
    const auto finished = std::count(worker_finished_.begin(), worker_finished_.end(), true);
    if (compute_finished_ && finished == comm_.size()) {
      std::lock_guard lock(done_mutex_);
      if (done_.empty()) break;
      continue;
    }
    if (active) {
      sleep = shortest;
    } else {
      std::this_thread::sleep_for(sleep);
      sleep = std::min(sleep * 2, longest);
    }
  }
  prctl(PR_SET_TIMERSLACK, 0UL, 0UL, 0UL, 0UL);
  for (int r = 1; r < comm_.size(); ++r) {
    const std::uint8_t none = 0;
    check_mpi(MPI_Send(&none, 1, MPI_BYTE, r, tag_release, comm_.get()), "MPI_Send");
  }
}

void Map::compute_on_root(Dispatcher& dispatcher) {
  // OpenMP's thread limit belongs to the calling thread: set it in this one too.
  budget_.apply_to_current_thread();
  try {
    while (!stopping_) {
      // The mean bin time only sizes chunks: this thread's own figure is good enough.
      const double mean =
          runner_.bins() == 0 ? 0.0 : runner_.busy() / static_cast<double>(runner_.bins());
      const Chunk chunk = dispatcher.take(mean);
      if (chunk.count == 0) break;
      for (std::int64_t k = 0; k < chunk.count && !stopping_; ++k) {
        CompletedBin bin = runner_.run(dispatcher.position(chunk.first + k));
        std::lock_guard lock(done_mutex_);
        done_.push_back(std::move(bin));
      }
    }
  } catch (...) {
    compute_error_ = std::current_exception();
  }
  compute_finished_ = true;
}

bool Map::handle_message(Collector& collector, Dispatcher* dispatcher) {
  int flag = 0;
  MPI_Status status{};
  check_mpi(MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, comm_.get(), &flag, &status), "MPI_Iprobe");
  if (!flag) return false;
  const std::string bytes = receive_bytes(status, comm_.get());
  const int source = status.MPI_SOURCE;
  if (status.MPI_TAG == tag_report) {
    accept_report(collector, bytes, source, dispatcher);
  } else if (status.MPI_TAG == tag_finished) {
    detail::ByteReader r(bytes);
    const bool interrupted = r.get<std::uint8_t>() != 0;
    RankStats& stats = rank_stats_[static_cast<std::size_t>(source)];
    stats.busy = r.get<double>();
    stats.bins = r.get<std::int64_t>();
    worker_finished_[static_cast<std::size_t>(source)] = true;
    if (interrupted && !stopping_) {
      interrupted_ = true;
      broadcast_stop(dispatcher);
    }
  } else {
    throw InternalError(
        fmt::format("rank 0 received unexpected tag {} from rank {}", status.MPI_TAG, source));
  }
  return true;
}

void Map::accept_report(Collector& collector, const std::string& bytes, int source,
                        Dispatcher* dispatcher) {
  detail::ByteReader r(bytes);
  const bool want_work = r.get<std::uint8_t>() != 0;
  const bool interrupted = r.get<std::uint8_t>() != 0;
  const auto count = r.get<std::uint64_t>();
  for (std::uint64_t k = 0; k < count; ++k) collector.accept(detail::get_completed(r));
  if (interrupted && !stopping_) {
    interrupted_ = true;
    broadcast_stop(dispatcher);
  }
  if (want_work) {
    Chunk chunk{0, 0};
    if (dispatcher != nullptr && !stopping_) chunk = dispatcher->take(collector.mean_bin_seconds());
    // A chunk is consecutive in the pending list (not in the plan): send list indices.
    const std::int64_t reply[2] = {chunk.first, chunk.count};
    check_mpi(MPI_Send(reply, 2, MPI_INT64_T, source, tag_assign, comm_.get()), "MPI_Send");
  }
}

void Map::broadcast_stop(Dispatcher* dispatcher) {
  stopping_ = true;
  if (dispatcher != nullptr) dispatcher->stop();
  if (stop_sent_) return;
  stop_sent_ = true;
  for (int r = 1; r < comm_.size(); ++r) {
    if (worker_finished_[static_cast<std::size_t>(r)]) continue;
    const std::uint8_t none = 0;
    check_mpi(MPI_Send(&none, 1, MPI_BYTE, r, tag_stop, comm_.get()), "MPI_Send");
  }
}

// ---------------------------------------------------------------------------------
void Map::run_worker() {
  Reporter reporter(comm_.get());
  if (settings_.schedule == Schedule::dynamic) {
    worker_dynamic(reporter);
  } else {
    worker_static(static_share(pending_, settings_.schedule, comm_.rank(), comm_.size()), reporter);
  }
}

// Probing costs ~0.1 us: with very short bins, look for a stop at most every ms.
bool Map::root_said_stop(double& next_check) {
  const double now = now_seconds();
  if (now < next_check) return false;
  next_check = now + 1e-3;
  int flag = 0;
  check_mpi(MPI_Iprobe(0, tag_stop, comm_.get(), &flag, MPI_STATUS_IGNORE), "MPI_Iprobe");
  if (flag) {
    std::uint8_t none = 0;
    check_mpi(MPI_Recv(&none, 1, MPI_BYTE, 0, tag_stop, comm_.get(), MPI_STATUS_IGNORE),
              "MPI_Recv");
  }
  return flag != 0;
}

void Map::worker_static(const Positions& mine, Reporter& reporter) {
  bool interrupted = false;
  double next_check = 0.0;
  for (const std::int64_t pos : mine) {
    if (stop_requested()) {
      interrupted = true;
      break;
    }
    if (root_said_stop(next_check)) break;
    reporter.add(runner_.run(pos));
    if (reporter.due()) reporter.send(false, false);
  }
  reporter.flush(interrupted);
  finish_worker(interrupted);
}

void Map::worker_dynamic(Reporter& reporter) {
  // One request is always in flight while a chunk runs, so the next chunk is
  // usually there when this one ends (prefetch hides rank 0's reply latency).
  std::int64_t assignment[2] = {0, 0};
  MPI_Request request = MPI_REQUEST_NULL;
  auto ask = [&] {
    check_mpi(MPI_Irecv(assignment, 2, MPI_INT64_T, 0, tag_assign, comm_.get(), &request),
              "MPI_Irecv");
    reporter.send(true, false);
  };
  ask();
  bool interrupted = false;
  bool stopped = false;
  double next_check = 0.0;
  while (true) {
    check_mpi(MPI_Wait(&request, MPI_STATUS_IGNORE), "MPI_Wait");
    if (assignment[1] == 0 || interrupted || stopped) break;
    const Chunk chunk{assignment[0], assignment[1]};
    ask();
    for (std::int64_t k = 0; k < chunk.count; ++k) {
      if (stop_requested()) {
        interrupted = true;
        break;
      }
      if (root_said_stop(next_check)) {
        stopped = true;
        break;
      }
      reporter.add(runner_.run(pending_[static_cast<std::size_t>(chunk.first + k)]));
      if (reporter.due()) reporter.send(false, false);
    }
  }
  reporter.flush(interrupted);
  finish_worker(interrupted);
}

void Map::finish_worker(bool interrupted) {
  std::string message;
  detail::ByteWriter w(message);
  w.put<std::uint8_t>(interrupted ? 1 : 0);
  w.put<double>(runner_.busy());
  w.put<std::int64_t>(runner_.bins());
  send_bytes(message, 0, tag_finished, comm_.get());
  // Drain a stop that crossed our finish, then wait for the release.
  while (true) {
    MPI_Status status{};
    check_mpi(MPI_Probe(0, MPI_ANY_TAG, comm_.get(), &status), "MPI_Probe");
    (void)receive_bytes(status, comm_.get());
    if (status.MPI_TAG == tag_release) break;
  }
}

void broadcast_positions(Positions& pending, const Communicator& comm) {
  auto count = static_cast<std::int64_t>(pending.size());
  check_mpi(MPI_Bcast(&count, 1, MPI_INT64_T, 0, comm.get()), "MPI_Bcast");
  pending.resize(static_cast<std::size_t>(count));
  check_mpi(MPI_Bcast(pending.data(), static_cast<int>(count), MPI_INT64_T, 0, comm.get()),
            "MPI_Bcast");
}

// Rank 0's flags and input error, so that every rank ends the map the same way.
void broadcast_outcome(MapResult& result, std::string& input_error, const Communicator& comm) {
  std::int64_t flags[4] = {result.failed, result.interrupted ? 1 : 0, result.stopped_early ? 1 : 0,
                           static_cast<std::int64_t>(input_error.size())};
  check_mpi(MPI_Bcast(flags, 4, MPI_INT64_T, 0, comm.get()), "MPI_Bcast");
  result.failed = flags[0];
  result.interrupted = flags[1] != 0;
  result.stopped_early = flags[2] != 0;
  input_error.resize(static_cast<std::size_t>(flags[3]));
  if (flags[3] > 0) {
    check_mpi(MPI_Bcast(input_error.data(), static_cast<int>(flags[3]), MPI_CHAR, 0, comm.get()),
              "MPI_Bcast");
  }
}

}  // namespace

// ---------------------------------------------------------------------------------
Schedule parse_schedule(std::string_view name) {
  if (name == "static") return Schedule::static_block;
  if (name == "cyclic") return Schedule::cyclic;
  if (name == "dynamic") return Schedule::dynamic;
  throw UsageError(fmt::format("schedule: '{}' is not one of static, cyclic, dynamic", name));
}

std::string_view schedule_name(Schedule schedule) {
  switch (schedule) {
    case Schedule::static_block:
      return "static";
    case Schedule::cyclic:
      return "cyclic";
    case Schedule::dynamic:
      return "dynamic";
  }
  return "?";
}

double MapResult::efficiency() const {
  if (ranks.empty() || wall <= 0.0) return 0.0;
  double busy = 0.0;
  for (const RankStats& r : ranks) busy += r.busy;
  return busy / (static_cast<double>(ranks.size()) * wall);
}

double MapResult::imbalance() const {
  if (ranks.empty()) return 0.0;
  double busy = 0.0;
  double most = 0.0;
  for (const RankStats& r : ranks) {
    busy += r.busy;
    most = std::max(most, r.busy);
  }
  const double mean = busy / static_cast<double>(ranks.size());
  return mean > 0.0 ? most / mean - 1.0 : 0.0;
}

bool stop_requested() { return stop_flag.load(std::memory_order_relaxed); }

void request_stop(bool value) { stop_flag.store(value, std::memory_order_relaxed); }

void install_stop_handlers() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  for (const int signal : {SIGTERM, SIGUSR1}) {
    if (sigaction(signal, &action, nullptr) != 0) {
      throw IoError(fmt::format("cannot install the handler for signal {}", signal));
    }
  }
}

RunContext::RunContext(Runtime runtime, ThreadBudget budget, RunSettings settings,
                       LogTarget log_target, Checkpoint* checkpoint, bool nested)
    : runtime_(std::move(runtime)),
      budget_(std::move(budget)),
      settings_(settings),
      log_target_(std::move(log_target)),
      checkpoint_(checkpoint),
      nested_(nested) {
  LogTarget tool_target = log_target_;
  if (runtime_.rank() != 0) tool_target = [](std::string_view) {};
  log_ = make_target_logger("tool", std::move(tool_target), settings_.chatter);
}

RunContext::~RunContext() = default;

MapResult RunContext::map(std::string_view name, const BinPlan& plan, const Schema& schema,
                          const BinFunction& fn) {
  // One rank (every nested run) makes no MPI call at all: a nested run may execute on rank
  // 0's compute thread, and MPI_THREAD_FUNNELED allows MPI on the main thread only. With
  // several ranks, a private communicator keeps the map's messages apart from the tool's.
  const bool alone = runtime_.size() == 1;
  std::optional<Communicator> own;
  if (!alone) {
    int main_thread = 0;
    check_mpi(MPI_Is_thread_main(&main_thread), "MPI_Is_thread_main");
    if (!main_thread) {
      throw InternalError("a map over several ranks must run on the thread that initialised MPI");
    }
    own.emplace(runtime_.comm.duplicate());
  }
  const Communicator& comm = alone ? runtime_.comm : *own;
  std::optional<Collector> collector;
  Positions pending;
  if (comm.rank() == 0) {
    collector.emplace(std::string(name), plan.size(), settings_, log_target_, checkpoint_);
    pending = collector->resume(plan.size());
    if (collector->resumed() > 0) {
      log_->info("{}resumed {} of {} bins from the checkpoint", run_marker, collector->resumed(),
                 plan.size());
    }
    collector->replay_logs();
  }
  // Static schedules need the pending list on every rank; dynamic workers index it too.
  if (!alone) broadcast_positions(pending, comm);

  Map map(comm, plan, schema, fn, budget_, settings_, std::move(pending));
  MapResult result;
  if (comm.rank() == 0) {
    result = map.run_root(*collector);
    collector->finish(result.interrupted || result.stopped_early);
    collector->fill(result, plan, schema);
  } else {
    map.run_worker();
  }
  // A bin that found bad input (UsageError) ends the run on every rank with its message.
  std::string input_error = collector ? collector->input_error() : std::string();
  if (!alone) broadcast_outcome(result, input_error, comm);
  if (!input_error.empty()) throw AgreedError(exit_status::usage, input_error);
  return result;
}

}  // namespace binflow
