#include "binflow/ordered_log.hpp"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>

#include <fmt/format.h>
#include <spdlog/sinks/base_sink.h>

#include "binflow/error.hpp"

namespace binflow {

namespace {

// Lines carry no timestamps or thread ids: a run's log must read the same on any
// number of ranks. Warnings and errors keep a level word so that they stand out.
void append_line(std::string& out, std::string_view indent, const spdlog::details::log_msg& msg) {
  out.append(indent);
  std::string_view payload(msg.payload.data(), msg.payload.size());
  // The run marker stays first on the line so that a filter needs to look only there.
  if (payload.substr(0, run_marker.size()) == run_marker) {
    out.append(run_marker);
    payload.remove_prefix(run_marker.size());
  }
  if (msg.level >= spdlog::level::err) {
    out.append("error: ");
  } else if (msg.level == spdlog::level::warn) {
    out.append("warning: ");
  }
  out.append(payload);
  out.push_back('\n');
}

class TargetSink final : public spdlog::sinks::base_sink<std::mutex> {
public:
  explicit TargetSink(LogTarget target) : target_(std::move(target)) {}

protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    line_.clear();
    append_line(line_, {}, msg);
    target_(line_);
  }
  void flush_() override {}

private:
  LogTarget target_;
  std::string line_;
};

}  // namespace

spdlog::level::level_enum chatter_level(int chatter) {
  switch (chatter) {
    case 0:
      return spdlog::level::off;
    case 1:
      return spdlog::level::warn;
    case 2:
      return spdlog::level::info;
    case 3:
      return spdlog::level::debug;
    default:
      return spdlog::level::trace;
  }
}

class BinLog::Sink final : public spdlog::sinks::base_sink<std::mutex> {
public:
  explicit Sink(std::size_t spill_bytes) : spill_bytes_(spill_bytes) {}
  ~Sink() override {
    if (spill_ != nullptr) std::fclose(spill_);
  }
  Sink(const Sink&) = delete;
  Sink& operator=(const Sink&) = delete;

  void begin(std::string_view header, bool show) {
    std::lock_guard lock(mutex_);
    buffer_.clear();
    if (show) {
      buffer_.append(header);
      buffer_.push_back('\n');
    }
    if (spill_ != nullptr) {
      std::fclose(spill_);
      spill_ = nullptr;
    }
  }

  std::string take() {
    std::lock_guard lock(mutex_);
    if (spill_ == nullptr) return std::exchange(buffer_, {});
    spill_buffer();
    std::string text;
    const long size = std::ftell(spill_);
    bool read_back = size >= 0 && std::fseek(spill_, 0, SEEK_SET) == 0;
    if (read_back) {
      text.resize(static_cast<std::size_t>(size));
      read_back = std::fread(text.data(), 1, text.size(), spill_) == text.size();
    }
    if (!read_back) throw IoError("cannot read back a bin's spilled log from its temporary file");
    std::fclose(spill_);
    spill_ = nullptr;
    return text;
  }

protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    append_line(buffer_, "  ", msg);
    if (buffer_.size() >= spill_bytes_) spill_buffer();
  }
  void flush_() override {}

private:
  void spill_buffer() {
    if (spill_ == nullptr) {
      spill_ = std::tmpfile();
      if (spill_ == nullptr) {
        throw IoError(fmt::format("cannot create a temporary file for a bin's log ({})",
                                  std::strerror(errno)));
      }
    }
    if (std::fwrite(buffer_.data(), 1, buffer_.size(), spill_) != buffer_.size()) {
      throw IoError("cannot write a bin's log to its temporary file");
    }
    buffer_.clear();
  }

  std::size_t spill_bytes_;
  std::string buffer_;
  std::FILE* spill_ = nullptr;
};

BinLog::BinLog(int chatter, std::size_t spill_bytes)
    : sink_(std::make_shared<Sink>(spill_bytes)),
      logger_(std::make_shared<spdlog::logger>("bin", sink_)) {
  logger_->set_level(chatter_level(chatter));
}

BinLog::~BinLog() = default;

void BinLog::begin(std::string_view header) {
  sink_->begin(header, logger_->should_log(spdlog::level::info));
}

std::string BinLog::take() { return sink_->take(); }

void OrderedLog::submit(std::size_t position, std::string text) {
  if (position < next_) throw InternalError(fmt::format("log block {} submitted twice", position));
  const std::size_t slot = position - next_;
  if (slot >= waiting_.size()) waiting_.resize(slot + 1);
  if (waiting_[slot]) throw InternalError(fmt::format("log block {} submitted twice", position));
  waiting_[slot] = std::move(text);
  while (!waiting_.empty()) {
    const std::optional<std::string>& block = waiting_.front();
    if (!block) break;
    if (!block->empty()) target_(*block);
    waiting_.pop_front();
    ++next_;
  }
}

void OrderedLog::flush_remaining() {
  for (auto& block : waiting_) {
    if (block && !block->empty()) target_(*block);
    ++next_;
  }
  waiting_.clear();
}

RunLogSink::RunLogSink(std::string logfile, bool console, std::chrono::milliseconds flush_interval)
    : logfile_(std::move(logfile)), console_(console), flush_interval_(flush_interval) {}

void RunLogSink::open_file() {
  std::lock_guard lock(mutex_);
  if (opened_) return;
  opened_ = true;
  if (logfile_.empty()) return;
  file_ = std::fopen(logfile_.c_str(), "w");
  if (file_ == nullptr) {
    throw IoError(fmt::format("{}: cannot open the log file ({})", logfile_, std::strerror(errno)));
  }
  if (std::fwrite(held_.data(), 1, held_.size(), file_) != held_.size()) record_file_error("write");
  held_ = std::string();
}

RunLogSink::~RunLogSink() {
  flush();
  if (file_ != nullptr) std::fclose(file_);
}

// The first error of the log file is kept and the file dropped: a full disk must not turn
// every later line into another error, nor stop the run whose results are still to be written.
void RunLogSink::record_file_error(const char* what) {
  if (write_error_.empty()) {
    write_error_ = fmt::format("{}: cannot {} the log file ({}); the log is incomplete", logfile_,
                               what, std::strerror(errno));
  }
  std::fclose(file_);
  file_ = nullptr;
}

void RunLogSink::write(std::string_view text) {
  std::lock_guard lock(mutex_);
  // Under a status line the console's text is held and written in one go with one erase and
  // one redraw per flush: a redraw per block made a run of 1 ms bins on a terminal (tmux)
  // 10-25% slower.
  if (!status_.empty() && console_) {
    pending_ += text;
  } else if (console_) {
    write_console_locked(text);
  }
  if (file_ != nullptr) {
    if (std::fwrite(text.data(), 1, text.size(), file_) != text.size()) record_file_error("write");
  } else if (!opened_ && !logfile_.empty()) {
    held_ += text;
  }
  const auto now = std::chrono::steady_clock::now();
  if (now - last_flush_ > flush_interval_) {
    flush_locked();
    last_flush_ = now;
  }
}

void RunLogSink::write_console_locked(std::string_view text) {
  if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() && write_error_.empty()) {
    write_error_ = fmt::format("standard output: cannot write ({})", std::strerror(errno));
  }
}

void RunLogSink::show_status(std::string line) {
  std::lock_guard lock(mutex_);
  const bool drawn_by_flush = !pending_.empty();
  status_ = std::move(line);
  flush_locked();
  if (!drawn_by_flush) draw_status_locked();
}

void RunLogSink::clear_status() {
  std::lock_guard lock(mutex_);
  if (status_.empty()) return;
  erase_status_locked();
  status_.clear();
  flush_locked();
}

void RunLogSink::progress_line(std::string_view line) {
  std::lock_guard lock(mutex_);
  flush_locked();
  // One write: stderr is unbuffered, and two would let another writer's text in between.
  const std::string text = fmt::format("{}\n", line);
  std::fwrite(text.data(), 1, text.size(), stderr);
}

// Progress is a courtesy: a failed write to stderr is not the log's failure.
void RunLogSink::draw_status_locked() const {
  const std::string text = fmt::format("\r{}\033[K", status_);
  std::fwrite(text.data(), 1, text.size(), stderr);
}

void RunLogSink::erase_status_locked() const { std::fputs("\r\033[K", stderr); }

void RunLogSink::flush() {
  std::lock_guard lock(mutex_);
  flush_locked();
}

void RunLogSink::close() {
  std::lock_guard lock(mutex_);
  flush_locked();
  if (file_ != nullptr) {
    if (std::fclose(file_) != 0 && write_error_.empty()) {
      write_error_ = fmt::format("{}: cannot close the log file ({}); the log is incomplete",
                                 logfile_, std::strerror(errno));
    }
    file_ = nullptr;
  }
}

std::string RunLogSink::write_error() {
  std::lock_guard lock(mutex_);
  return write_error_;
}

// Text held under a status line goes out between an erase and a redraw of it, the redraw
// only once stdout is flushed (stdout and stderr may be one terminal).
void RunLogSink::flush_locked() {
  const bool held = !pending_.empty();
  if (held) {
    if (!status_.empty()) erase_status_locked();
    write_console_locked(pending_);
    pending_.clear();
  }
  if (console_ && std::fflush(stdout) != 0 && write_error_.empty()) {
    write_error_ = fmt::format("standard output: cannot write ({})", std::strerror(errno));
  }
  if (held && !status_.empty()) draw_status_locked();
  if (file_ != nullptr && std::fflush(file_) != 0) record_file_error("write");
}

std::shared_ptr<spdlog::logger> make_target_logger(const std::string& name, LogTarget target,
                                                   int chatter) {
  auto logger =
      std::make_shared<spdlog::logger>(name, std::make_shared<TargetSink>(std::move(target)));
  logger->set_level(chatter_level(chatter));
  return logger;
}

}  // namespace binflow
