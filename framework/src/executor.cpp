#include "binflow/executor.hpp"

#include <sys/prctl.h>
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <ctime>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <thread>

#include <fmt/format.h>

#include "binflow/bin_context.hpp"
#include "binflow/checkpoint.hpp"
#include "binflow/error.hpp"
#include "binflow/run_monitor.hpp"
#include "map_protocol.hpp"
#include "memory.hpp"
#include "serialize.hpp"

// The executor is three pieces around one protocol (map_protocol.hpp): rank 0's loop
// (RootLoop: a service loop on the main thread, the only one that calls MPI, and rank 0's
// own bins on a compute thread), a worker's loop (WorkerLoop: run bins from its source,
// report them in batches), and, for one rank (every nested run), the inline loop in the
// calling thread. Where bins come from is a WorkSource: a fixed share (static, cyclic), or
// chunks of rank 0's Dispatcher (dynamic), asked for over the protocol by workers.

namespace binflow {

namespace {

using detail::Channel;
using detail::Tag;

// ---------------------------------------------------------------------------------
// Stop flag: the only global state, because a signal handler can reach nothing else.
std::atomic<bool> stop_flag{false};
static_assert(std::atomic<bool>::is_always_lock_free, "the stop flag must be signal-safe");

extern "C" void on_stop_signal(int /*signal*/) { stop_flag.store(true, std::memory_order_relaxed); }

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

std::int64_t process_peak_rss_kib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

// getrusage costs a system call; the peak moves slowly, so it is read at most every 10 ms.
std::int64_t peak_rss_kib(double now) {
  thread_local double last = -1.0;
  thread_local std::int64_t peak = 0;
  if (now - last >= 0.01) {
    peak = process_peak_rss_kib();
    last = now;
  }
  return peak;
}

// Positions (into the plan) that this run still has to compute, minus resumed ones.
using Positions = std::vector<std::int64_t>;
using PositionSpan = std::span<const std::int64_t>;

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
  // `memory`: the bound of one bin (the rank's, or its share when bins run in lanes);
  // `thread_clock`: a bin's CPU time from its thread's clock (lanes: one thread per bin)
  // instead of the process's (a bin's own threads included).
  BinRunner(const BinPlan& plan, const Schema& schema, const BinFunction& fn,
            const ThreadBudget& budget, const RunSettings& settings, int rank, double t0,
            MemoryLimit memory, bool thread_clock)
      : plan_(plan),
        schema_(schema),
        fn_(fn),
        budget_(budget),
        settings_(settings),
        memory_(std::move(memory)),
        thread_clock_(thread_clock),
        rank_(rank),
        t0_(t0),
        log_(settings.chatter) {}

  CompletedBin run(std::int64_t position) {
    const Bin& bin = plan_[static_cast<std::size_t>(position)];
    log_.begin(plan_.axis().points ? fmt::format("bin {}", bin.index)
                                   : fmt::format("bin {} [{:.10g}, {:.10g}) {}", bin.index, bin.lo,
                                                 bin.hi, plan_.axis().unit));
    if (bins_ == 0) cpu_mark_ = cpu_seconds();  // the first bin's own thread
    BinContext ctx(bin, log_.logger(),
                   RngStream(settings_.seed, static_cast<std::uint64_t>(bin.index)), budget_,
                   memory_);
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
    const double cpu_end = cpu_seconds();
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
    out.status = std::string(bin_status::failed);
    out.message = std::string(what);
    out.row = schema_.blank_row();
    log_.logger().error("bin {} failed: {}", plan_[static_cast<std::size_t>(out.position)].index,
                        what);
  }

  [[nodiscard]] double cpu_seconds() const {
    if (!thread_clock_) return process_cpu_seconds();
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
  }

  const BinPlan& plan_;
  const Schema& schema_;
  const BinFunction& fn_;
  const ThreadBudget& budget_;
  const RunSettings& settings_;
  MemoryLimit memory_;
  bool thread_clock_;
  int rank_;
  double t0_;
  BinLog log_;
  double cpu_mark_ = 0.0;
  double busy_ = 0.0;
  std::int64_t bins_ = 0;
};

// ---------------------------------------------------------------------------------
// Where a rank runs its bins: on the calling thread (one lane, as every map did before), or,
// for a bin function that allows it (MapOptions::concurrent_bins), on `lanes` threads at
// once: the calling thread and lanes - 1 helpers, each lane with its own BinRunner (its log
// capture, its CPU clock) and a budget of one thread. A light-curve bin holds a few hundred
// events, too few for the fit's blocks of 2048 to use a second thread; a second lane runs a
// second bin. Positions run in slices; a slice returns once all its bins are done, and the
// calling thread then hands them on in position order (the results and the ordered log do
// not depend on the lanes).
class Lanes {
public:
  Lanes(int lanes, const BinPlan& plan, const Schema& schema, const BinFunction& fn,
        const ThreadBudget& budget, const RunSettings& settings, int rank, double t0)
      : lane_budget_(ThreadBudget::nested(1)) {
    const bool several = lanes > 1;
    MemoryLimit memory = settings.memory_limit;
    if (several && memory.bytes() > 0) {
      memory = MemoryLimit(memory.bytes() / lanes,
                           fmt::format("{}, shared by {} bins at once", memory.source(), lanes));
    }
    for (int k = 0; k < lanes; ++k) {
      runners_.push_back(std::make_unique<BinRunner>(plan, schema, fn,
                                                     several ? lane_budget_ : budget, settings,
                                                     rank, t0, memory, several));
    }
    for (int k = 1; k < lanes; ++k) helpers_.emplace_back([this, k] { helper(k); });
  }
  Lanes(const Lanes&) = delete;
  Lanes& operator=(const Lanes&) = delete;
  ~Lanes() {
    {
      std::lock_guard lock(mutex_);
      shutdown_ = true;
    }
    wake_.notify_all();
    for (std::thread& t : helpers_) t.join();
  }

  [[nodiscard]] int count() const { return static_cast<int>(runners_.size()); }
  /// The budget the calling thread applies while it runs bins.
  [[nodiscard]] const ThreadBudget* lane_budget() const {
    return count() > 1 ? &lane_budget_ : nullptr;
  }
  /// Positions per slice: one (the loops' checks between bins, as before) on one lane;
  /// 32 per lane on several, so that waiting for a slice's last bin costs a few percent.
  [[nodiscard]] std::size_t slice_size() const {
    return count() == 1 ? 1 : std::size_t{32} * runners_.size();
  }

  /// Runs `positions`; a lane starts no bin once `stop()` is true (those are left pending).
  /// `done` gets every completed bin, in position order, on the calling thread.
  template <class Stop, class Done>
  void run(PositionSpan positions, const Stop& stop, const Done& done) {
    if (count() == 1) {
      for (const std::int64_t pos : positions) {
        if (stop()) return;
        done(runners_[0]->run(pos));
      }
      return;
    }
    results_.assign(positions.size(), std::nullopt);
    {
      std::lock_guard lock(mutex_);
      slice_ = positions;
      stop_ = stop;
      next_ = 0;
      busy_helpers_ = helpers_.size();
      ++generation_;
    }
    wake_.notify_all();
    work(0);
    {
      std::unique_lock lock(mutex_);
      finished_.wait(lock, [this] { return busy_helpers_ == 0; });
    }
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
    for (std::optional<CompletedBin>& bin : results_) {
      if (bin) done(std::move(*bin));
    }
  }

  /// Bin time per lane: what a rank's busy time means with several.
  [[nodiscard]] double busy() const {
    double sum = 0.0;
    for (const auto& r : runners_) sum += r->busy();
    return sum / static_cast<double>(runners_.size());
  }
  [[nodiscard]] std::int64_t bins() const {
    std::int64_t sum = 0;
    for (const auto& r : runners_) sum += r->bins();
    return sum;
  }
  /// Wall time of one bin, on average so far (0 before the first).
  [[nodiscard]] double mean_bin_seconds() const {
    const std::int64_t n = bins();
    return n == 0 ? 0.0 : busy() * static_cast<double>(runners_.size()) / static_cast<double>(n);
  }

private:
  void helper(int lane) {
    lane_budget_.apply_to_current_thread();
    std::uint64_t seen = 0;
    while (true) {
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return shutdown_ || generation_ != seen; });
        if (shutdown_) return;
        seen = generation_;
      }
      work(lane);
      {
        std::lock_guard lock(mutex_);
        --busy_helpers_;
      }
      finished_.notify_one();
    }
  }

  void work(int lane) {
    try {
      while (true) {
        const std::size_t i = next_.fetch_add(1);
        if (i >= slice_.size() || stop_()) return;
        results_[i] = runners_[static_cast<std::size_t>(lane)]->run(slice_[i]);
      }
    } catch (...) {
      std::lock_guard lock(mutex_);
      if (!error_) error_ = std::current_exception();
    }
  }

  ThreadBudget lane_budget_;
  std::vector<std::unique_ptr<BinRunner>> runners_;
  std::vector<std::thread> helpers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable finished_;
  std::uint64_t generation_ = 0;
  std::size_t busy_helpers_ = 0;
  bool shutdown_ = false;
  // The current slice (set by the calling thread before it wakes the helpers).
  PositionSpan slice_;
  std::function<bool()> stop_;
  std::atomic<std::size_t> next_{0};
  std::vector<std::optional<CompletedBin>> results_;
  std::exception_ptr error_;
};

// ---------------------------------------------------------------------------------
// Rank 0: receives completed bins in any order; writes log blocks in order, appends
// to the checkpoint, and keeps the outcomes for the result table. Main thread only.
class Collector {
public:
  Collector(std::string name, std::size_t plan_size, const RunSettings& settings, LogTarget target,
            Checkpoint* checkpoint, RunMonitor* monitor)
      : name_(std::move(name)),
        outcomes_(plan_size),
        settings_(settings),
        log_(std::move(target)),
        checkpoint_(checkpoint),
        monitor_(monitor) {}

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
      if (const auto& bin = outcomes_[pos]) log_.submit(pos, bin.value().log);
    }
  }

  void accept(CompletedBin bin) {
    if (bin.status == bin_status::failed) ++failed_;
    if (bin.bad_input && input_error_.empty()) input_error_ = bin.message;
    wall_sum_ += bin.stats.wall;
    ++accepted_;
    if (monitor_ != nullptr) monitor_->bin_completed(bin.stats, bin.status);
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

  // The run's monitor (progress line, dashboard), if any, follows the map.
  void started(std::int64_t ranks) const {
    if (monitor_ != nullptr) {
      monitor_->map_started(name_, static_cast<std::int64_t>(outcomes_.size()), resumed_,
                            static_cast<int>(ranks));
    }
  }
  void rank_finished() const {
    if (monitor_ != nullptr) monitor_->rank_finished();
  }

  void finish(bool incomplete) {
    if (monitor_ != nullptr) monitor_->map_finished();
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
    full.add({"status", ColumnType::str, "",
              fmt::format("{}, {}, or a tool-defined status such as {}", bin_status::ok,
                          bin_status::failed, bin_status::empty)});
    full.add({"message", ColumnType::str, "", "why the bin failed (empty otherwise)"});
    Table table(std::move(full));
    result.stats.bins.reserve(outcomes_.size());
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
      result.stats.bins.push_back(bin->stats);
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
  RunMonitor* monitor_;
  std::int64_t failed_ = 0;
  std::int64_t accepted_ = 0;
  std::int64_t resumed_ = 0;
  double wall_sum_ = 0.0;
  std::string input_error_;
};

// ---------------------------------------------------------------------------------
// Rank 0's hand-out of dynamic chunks of the pending list, shared by its compute thread and
// its main thread (which answers the workers). Guided self-scheduling: a chunk is ~10 ms of
// work at the mean bin time seen so far, never more than remaining / (2 ranks). Shorter
// chunks interleave the ranks' bins finely, and ranks that read neighbouring events from
// one file then lose locality (2 ms chunks: 0.3 ms per light-curve bin instead of 0.22);
// the guided cap keeps the tail short for load balance. Under a static schedule every rank
// has its fixed share, and the dispatcher hands out nothing.
class Dispatcher {
public:
  struct Chunk {
    std::int64_t first = 0;  ///< index into the pending list
    std::int64_t count = 0;  ///< 0: nothing (more) to hand out
  };

  static Dispatcher dynamic(std::int64_t pending, int ranks) { return {pending, ranks}; }
  static Dispatcher none() { return {0, 1}; }

  Chunk take(double mean_bin_seconds) {
    std::lock_guard lock(mutex_);
    if (stopped_ || next_ >= pending_) return {next_, 0};
    const std::int64_t remaining = pending_ - next_;
    std::int64_t count = 1;
    if (mean_bin_seconds > 0.0) {
      const double wanted = std::ceil(chunk_target_seconds / mean_bin_seconds);
      const std::int64_t guided = std::max<std::int64_t>(1, remaining / (std::int64_t{2} * ranks_));
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

private:
  Dispatcher(std::int64_t pending, int ranks) : pending_(pending), ranks_(ranks) {}
  std::mutex mutex_;
  std::int64_t pending_;
  int ranks_;
  std::int64_t next_ = 0;
  bool stopped_ = false;
};

// ---------------------------------------------------------------------------------
// Where a loop's bins come from: successive spans of plan positions; empty = no more.
class WorkSource {
public:
  virtual ~WorkSource() = default;
  virtual PositionSpan next() = 0;
  /// After the last next() or an early stop: completes what is in flight.
  virtual void finish() {}
};

// A fixed share (static or cyclic schedule), handed out at once.
class FixedShare final : public WorkSource {
public:
  explicit FixedShare(Positions share) : share_(std::move(share)) {}
  PositionSpan next() override {
    if (given_) return {};
    given_ = true;
    return share_;
  }

private:
  Positions share_;
  bool given_ = false;
};

// Rank 0's compute thread under the dynamic schedule: chunks straight from the dispatcher,
// sized by this thread's own mean bin time (it only sizes chunks: good enough).
class RootChunks final : public WorkSource {
public:
  RootChunks(Dispatcher& dispatcher, const Positions& pending, const Lanes& lanes)
      : dispatcher_(dispatcher), pending_(pending), lanes_(lanes) {}
  PositionSpan next() override {
    const Dispatcher::Chunk chunk = dispatcher_.take(lanes_.mean_bin_seconds());
    return PositionSpan(pending_).subspan(static_cast<std::size_t>(chunk.first),
                                          static_cast<std::size_t>(chunk.count));
  }

private:
  Dispatcher& dispatcher_;
  const Positions& pending_;
  const Lanes& lanes_;
};

// ---------------------------------------------------------------------------------
// Rank > 0: batches completed bins into report messages.
class Reporter {
public:
  explicit Reporter(const Channel& channel) : channel_(channel) {}

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

  // Posted, not waited for: the worker goes on with its next bin at once.
  void send(bool want_work, bool interrupted) {
    channel_.post_send(0, Tag::report, detail::encode_report(want_work, interrupted, count_, body_),
                       outgoing_);
    body_.clear();
    count_ = 0;
  }

  /// Sends what is batched and waits until every report has left.
  void flush(bool interrupted) {
    if (count_ > 0 || interrupted) send(false, interrupted);
    outgoing_.complete();
  }

private:
  const Channel& channel_;
  Channel::Outgoing outgoing_;
  std::string body_;
  std::uint64_t count_ = 0;
  double started_ = 0.0;
};

// A worker under the dynamic schedule: chunks asked from rank 0. One request is always in
// flight while a chunk runs, so the next chunk is usually there when this one ends
// (prefetch hides rank 0's reply latency); each request carries the batched results.
class ChunksFromRoot final : public WorkSource {
public:
  ChunksFromRoot(const Channel& channel, const Positions& pending, Reporter& reporter)
      : channel_(channel), pending_(pending), reporter_(reporter) {
    ask();
  }
  PositionSpan next() override {
    const std::int64_t* assignment = request_.wait();
    if (assignment[1] == 0) return {};
    const auto chunk = PositionSpan(pending_).subspan(static_cast<std::size_t>(assignment[0]),
                                                      static_cast<std::size_t>(assignment[1]));
    ask();
    return chunk;
  }
  // Rank 0 answers every request, with count 0 once it stops: wait for the last one.
  void finish() override {
    if (request_.active()) (void)request_.wait();
  }

private:
  void ask() {
    channel_.post_assign_receive(request_);
    reporter_.send(true, false);
  }
  const Channel& channel_;
  const Positions& pending_;
  Reporter& reporter_;
  Channel::Pending request_;
};

// ---------------------------------------------------------------------------------
// One rank (every nested run): the bins run in the calling thread; no thread is started
// and no MPI call is made.
struct InlineOutcome {
  bool interrupted = false;
  bool stopped_early = false;
};

// Slices of `span` in order, `lanes.slice_size()` positions each.
template <class Each>
void for_each_slice(PositionSpan span, const Lanes& lanes, const Each& each) {
  for (std::size_t at = 0; at < span.size(); at += lanes.slice_size()) {
    if (!each(span.subspan(at, std::min(lanes.slice_size(), span.size() - at)))) return;
  }
}

InlineOutcome run_inline(const Positions& pending, Lanes& lanes, Collector& collector) {
  InlineOutcome outcome;
  std::size_t completed = 0;
  for_each_slice(pending, lanes, [&](PositionSpan slice) {
    if (stop_requested()) {
      outcome.interrupted = true;
      return false;
    }
    if (collector.failure_limit_reached()) {
      outcome.stopped_early = true;
      return false;
    }
    lanes.run(slice, [] { return stop_requested(); }, [&](CompletedBin&& bin) {
      ++completed;
      collector.accept(std::move(bin));
      collector.flush_if_due();
    });
    return true;
  });
  // A stop during the last slice left some of its bins pending.
  if (!outcome.stopped_early && completed < pending.size()) outcome.interrupted = true;
  return outcome;
}

// ---------------------------------------------------------------------------------
// Rank 0 of several: its bins run in a compute thread while this thread (the only one
// that calls MPI, so MPI_THREAD_FUNNELED suffices) answers requests and collects results;
// a long bin on rank 0 never delays the other ranks' next chunk.
class RootLoop {
public:
  RootLoop(const Channel& channel, int size, Lanes& lanes, Collector& collector,
           Dispatcher& dispatcher, WorkSource& own_bins, const ThreadBudget& budget)
      : channel_(channel),
        size_(size),
        lanes_(lanes),
        collector_(collector),
        dispatcher_(dispatcher),
        own_bins_(own_bins),
        budget_(budget),
        worker_finished_(static_cast<std::size_t>(size), false),
        rank_stats_(static_cast<std::size_t>(size)) {
    worker_finished_[0] = true;
    for (int r = 0; r < size; ++r) rank_stats_[static_cast<std::size_t>(r)].rank = r;
  }

  void run() {
    std::thread compute_thread([this] { compute(); });
    try {
      serve();
    } catch (...) {
      stopping_ = true;
      compute_thread.join();
      throw;
    }
    compute_thread.join();
    if (compute_error_) std::rethrow_exception(compute_error_);
  }

  [[nodiscard]] std::vector<RankStats> rank_stats() const { return rank_stats_; }
  [[nodiscard]] bool interrupted() const { return interrupted_; }
  [[nodiscard]] bool stopped_early() const { return stopped_early_; }

private:
  void compute() {
    // OpenMP's thread limit belongs to the calling thread: set it in this one too.
    (lanes_.lane_budget() != nullptr ? *lanes_.lane_budget() : budget_).apply_to_current_thread();
    try {
      while (!stopping_) {
        const PositionSpan span = own_bins_.next();
        if (span.empty()) break;
        for_each_slice(span, lanes_, [&](PositionSpan slice) {
          lanes_.run(slice, [this] { return stopping_.load(); }, [&](CompletedBin&& bin) {
            std::lock_guard lock(done_mutex_);
            done_.push_back(std::move(bin));
          });
          return !stopping_;
        });
      }
    } catch (...) {
      compute_error_ = std::current_exception();
    }
    compute_finished_ = true;
  }

  // Until every rank has finished and every result is collected; then releases them.
  void serve() {
    // Sleep while idle: Open MPI's blocking receive would spin on a core that compute
    // threads need. With a 1 us timer slack the sleeps are as short as asked; they grow
    // from 10 us to 0.5 ms, well inside the ~10 ms of work a prefetched chunk holds.
    prctl(PR_SET_TIMERSLACK, 1000UL, 0UL, 0UL, 0UL);
    constexpr auto shortest = std::chrono::microseconds(10);
    constexpr auto longest = std::chrono::microseconds(500);
    auto sleep = shortest;
    bool own_bins_seen_finished = false;
    while (true) {
      const bool active = service_step();
      if (compute_finished_ && !own_bins_seen_finished) {
        own_bins_seen_finished = true;
        collector_.rank_finished();
      }
      const auto finished = std::count(worker_finished_.begin(), worker_finished_.end(), true);
      if (compute_finished_ && finished == size_) {
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
    for (int r = 1; r < size_; ++r) channel_.send(r, Tag::release, detail::encode_signal());
  }

  // Messages, rank 0's own completed bins, checkpoint flushes and stop conditions.
  // Only other ranks' messages count as activity: rank 0's own results can wait for the
  // next wake-up, and waking up per local bin would preempt the compute thread that shares
  // this thread's core (measured: 0.2 -> 0.5 ms per light-curve bin).
  bool service_step() {
    bool active = false;
    while (const std::optional<detail::Message> message = channel_.poll()) {
      handle(*message);
      active = true;
    }
    std::vector<CompletedBin> local;
    {
      std::lock_guard lock(done_mutex_);
      local.swap(done_);
    }
    for (CompletedBin& bin : local) collector_.accept(std::move(bin));
    collector_.flush_if_due();
    if (!stopping_ && (stop_requested() || collector_.failure_limit_reached())) {
      (stop_requested() ? interrupted_ : stopped_early_) = true;
      stop_all();
    }
    return active;
  }

  void handle(const detail::Message& message) {
    const auto source = static_cast<std::size_t>(message.source);
    switch (message.tag) {
      case Tag::report: {
        detail::Report report = detail::decode_report(message.bytes);
        for (CompletedBin& bin : report.bins) collector_.accept(std::move(bin));
        if (report.interrupted) interrupt();
        if (report.want_work) {
          Dispatcher::Chunk chunk;
          if (!stopping_) chunk = dispatcher_.take(collector_.mean_bin_seconds());
          channel_.send_assign(message.source, chunk.first, chunk.count);
        }
        return;
      }
      case Tag::finished: {
        const detail::Finished f = detail::decode_finished(message.bytes);
        rank_stats_[source].busy = f.busy;
        rank_stats_[source].bins = f.bins;
        rank_stats_[source].peak_rss_kib = f.peak_rss_kib;
        worker_finished_[source] = true;
        collector_.rank_finished();
        if (f.interrupted) interrupt();
        return;
      }
      default:
        throw InternalError(fmt::format("rank 0 received unexpected tag {} from rank {}",
                                        static_cast<int>(message.tag), message.source));
    }
  }

  void interrupt() {
    if (stopping_) return;
    interrupted_ = true;
    stop_all();
  }

  void stop_all() {
    stopping_ = true;
    dispatcher_.stop();
    if (stop_sent_) return;
    stop_sent_ = true;
    for (int r = 1; r < size_; ++r) {
      if (!worker_finished_[static_cast<std::size_t>(r)]) {
        channel_.send(r, Tag::stop, detail::encode_signal());
      }
    }
  }

  const Channel& channel_;
  int size_;
  Lanes& lanes_;
  Collector& collector_;
  Dispatcher& dispatcher_;
  WorkSource& own_bins_;
  const ThreadBudget& budget_;

  // Shared between the main thread and the compute thread.
  std::mutex done_mutex_;
  std::vector<CompletedBin> done_;  // completed by the compute thread, not yet collected
  std::atomic<bool> compute_finished_{false};
  std::atomic<bool> stopping_{false};
  std::exception_ptr compute_error_;

  // Main thread only.
  std::vector<bool> worker_finished_;
  std::vector<RankStats> rank_stats_;
  bool interrupted_ = false;
  bool stopped_early_ = false;
  bool stop_sent_ = false;
};

// ---------------------------------------------------------------------------------
// Rank > 0: runs the bins of its source, reports them in batches, stops on a signal or on
// rank 0's word, then says it has finished and waits for the release.
class WorkerLoop {
public:
  WorkerLoop(const Channel& channel, Lanes& lanes) : channel_(channel), lanes_(lanes) {}

  void run(WorkSource& source, Reporter& reporter) {
    bool interrupted = false;
    bool stopped = false;
    double next_check = 0.0;
    while (!interrupted && !stopped) {
      const PositionSpan span = source.next();
      if (span.empty()) break;
      for_each_slice(span, lanes_, [&](PositionSpan slice) {
        if (stop_requested()) {
          interrupted = true;
          return false;
        }
        if (root_said_stop(next_check)) {
          stopped = true;
          return false;
        }
        std::size_t completed = 0;
        lanes_.run(slice, [] { return stop_requested(); }, [&](CompletedBin&& bin) {
          ++completed;
          reporter.add(bin);
        });
        if (reporter.due()) reporter.send(false, false);
        if (completed < slice.size()) interrupted = true;  // a stop during the slice
        return !interrupted;
      });
    }
    source.finish();
    reporter.flush(interrupted);
    finish(interrupted);
  }

private:
  // Probing costs ~0.1 us: with very short bins, look for a stop at most every ms.
  bool root_said_stop(double& next_check) const {
    const double now = now_seconds();
    if (now < next_check) return false;
    next_check = now + 1e-3;
    return channel_.take_if_arrived(0, Tag::stop);
  }

  void finish(bool interrupted) const {
    channel_.send(0, Tag::finished,
                  detail::encode_finished(
                      {interrupted, lanes_.busy(), lanes_.bins(), process_peak_rss_kib()}));
    // Drain a stop that crossed our finish, then wait for the release.
    while (channel_.wait_from(0).tag != Tag::release) {
    }
  }

  const Channel& channel_;
  Lanes& lanes_;
};

// Rank 0's flags and input error, so that every rank ends the map the same way.
void broadcast_outcome(MapResult& result, std::string& input_error, const Communicator& comm) {
  std::array<std::int64_t, 3> flags = {result.failed, result.interrupted ? 1 : 0,
                                       result.stopped_early ? 1 : 0};
  comm.broadcast(flags);
  result.failed = flags[0];
  result.interrupted = flags[1] != 0;
  result.stopped_early = flags[2] != 0;
  comm.broadcast(input_error);
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

bool stop_requested() { return stop_flag.load(std::memory_order_relaxed); }

void request_stop(bool value) { stop_flag.store(value, std::memory_order_relaxed); }

void install_stop_handlers() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  for (const int signal : {SIGTERM, SIGINT, SIGUSR1}) {
    if (sigaction(signal, &action, nullptr) != 0) {
      throw IoError(fmt::format("cannot install the handler for signal {}", signal));
    }
  }
}

RunContext::RunContext(Runtime runtime, ThreadBudget budget, RunSettings settings,
                       LogTarget log_target, Checkpoint* checkpoint, bool nested)
    : runtime_(std::move(runtime)),
      budget_(std::move(budget)),
      settings_(std::move(settings)),
      log_target_(std::move(log_target)),
      checkpoint_(checkpoint),
      nested_(nested) {
  LogTarget tool_target = log_target_;
  if (runtime_.rank() != 0) tool_target = [](std::string_view) {};
  log_ = make_target_logger("tool", std::move(tool_target), settings_.chatter);
}

RunContext::~RunContext() = default;

namespace {

// Rank 0 holds every row of a map (cells of the tool's columns plus bin, status and message)
// until the output is written: their size must fit in the machine's memory.
void check_result_memory(std::string_view name, const BinPlan& plan, const Schema& schema) {
  const double memory = detail::physical_memory_bytes();
  const double per_row = static_cast<double>((schema.size() + 3) * sizeof(Cell) + sizeof(Row));
  const double needed = static_cast<double>(plan.size()) * per_row;
  if (memory > 0.0 && needed > memory) {
    throw UsageError(fmt::format(
        "{}: {} bins are too many: their results alone need about {:.3g} GiB on rank 0, more "
        "than this machine's memory ({:.3g} GiB); use fewer bins",
        name, plan.size(), needed / 0x1p30, memory / 0x1p30));
  }
}

// Bins at once on each rank: the rank's threads, one per bin, when the bin function allows
// it and there are enough bins (four slices' worth per rank) for the lanes to stay busy;
// else one, with the rank's threads inside the bin.
int lane_count(const MapOptions& options, const ThreadBudget& budget, std::size_t pending,
               int ranks) {
  const auto threads = static_cast<std::size_t>(budget.threads());
  if (!options.concurrent_bins || threads < 2) return 1;
  const std::size_t enough = std::size_t{4} * 32 * threads * static_cast<std::size_t>(ranks);
  return pending >= enough ? budget.threads() : 1;
}

}  // namespace

MapResult RunContext::map(std::string_view name, const BinPlan& plan, const Schema& schema,
                          const BinFunction& fn, MapOptions options) {
  // A binning the results of which cannot fit in rank 0's memory is bad input, said before
  // any bin runs (not std::bad_alloc or the out-of-memory killer hours later).
  runtime_.comm.agree_on_root([&] { check_result_memory(name, plan, schema); });
  // A stop signal before the run's first map: leave before the log file and the checkpoint
  // are opened (collective: every rank leaves alike, even if one alone was signalled).
  if (!nested_ && !mapped_) {
    mapped_ = true;
    const int stop = stop_requested() ? 1 : 0;
    if ((runtime_.size() == 1 ? stop : runtime_.comm.max(stop)) != 0) {
      MapResult nothing;
      nothing.interrupted = true;
      return nothing;
    }
  }
  inputs_checked();
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
  std::optional<Collector> collector;  // rank 0
  Collector* root = nullptr;
  Positions pending;
  if (comm.rank() == 0) {
    Collector& c = collector.emplace(std::string(name), plan.size(), settings_, log_target_,
                                     checkpoint_, monitor_);
    root = &c;
    pending = c.resume(plan.size());
    if (c.resumed() > 0) {
      log_->info("{}resumed {} of {} bins from the checkpoint", run_marker, c.resumed(),
                 plan.size());
    }
    c.replay_logs();
    c.started(comm.size());
  }
  // Static shares are cut from the pending list on every rank; dynamic chunks index it.
  comm.broadcast(pending);

  const double t0 = now_seconds();
  const int lanes = lane_count(options, budget_, pending.size(), comm.size());
  // With bins at once, this thread (a lane itself, or rank 0's server) runs with the lanes'
  // one-thread budget until the map ends; the scope restores the rank's budget after.
  std::optional<ThreadBudgetScope> one_thread;
  if (lanes > 1) one_thread.emplace(ThreadBudget::nested(1));
  Lanes runner(lanes, plan, schema, fn, budget_, settings_, comm.rank(), t0);
  if (runner.count() > 1 && comm.rank() == 0) {
    log_->info("{}{} bins at once on each rank, one thread each", run_marker, runner.count());
  }
  const bool dynamic = settings_.schedule == Schedule::dynamic;
  MapResult result;
  if (root != nullptr) {
    Collector& c = *root;
    std::vector<RankStats> ranks(1);
    if (alone) {
      const InlineOutcome outcome = run_inline(pending, runner, c);
      result.interrupted = outcome.interrupted;
      result.stopped_early = outcome.stopped_early;
    } else {
      const Channel channel(comm);
      Dispatcher dispatcher =
          dynamic ? Dispatcher::dynamic(static_cast<std::int64_t>(pending.size()), comm.size())
                  : Dispatcher::none();
      std::unique_ptr<WorkSource> own_bins;
      if (dynamic) {
        own_bins = std::make_unique<RootChunks>(dispatcher, pending, runner);
      } else {
        own_bins =
            std::make_unique<FixedShare>(static_share(pending, settings_.schedule, 0, comm.size()));
      }
      RootLoop loop(channel, comm.size(), runner, c, dispatcher, *own_bins, budget_);
      loop.run();
      ranks = loop.rank_stats();
      result.interrupted = loop.interrupted();
      result.stopped_early = loop.stopped_early();
    }
    result.stats.wall = now_seconds() - t0;
    ranks[0].busy = runner.busy();
    ranks[0].bins = runner.bins();
    ranks[0].peak_rss_kib = process_peak_rss_kib();
    for (RankStats& r : ranks) r.idle = std::max(0.0, result.stats.wall - r.busy);
    result.stats.ranks = std::move(ranks);
    result.failed = c.failed();
    c.finish(result.interrupted || result.stopped_early);
    c.fill(result, plan, schema);
  } else {
    const Channel channel(comm);
    Reporter reporter(channel);
    std::unique_ptr<WorkSource> source;
    if (dynamic) {
      source = std::make_unique<ChunksFromRoot>(channel, pending, reporter);
    } else {
      source = std::make_unique<FixedShare>(
          static_share(pending, settings_.schedule, comm.rank(), comm.size()));
    }
    WorkerLoop(channel, runner).run(*source, reporter);
  }
  // A bin that found bad input (UsageError) ends the run on every rank with its message.
  std::string input_error = root != nullptr ? root->input_error() : std::string();
  broadcast_outcome(result, input_error, comm);
  if (!input_error.empty()) throw AgreedError(exit_status::usage, input_error);
  return result;
}

}  // namespace binflow
