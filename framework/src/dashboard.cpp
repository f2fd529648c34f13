#include "binflow/dashboard.hpp"

#include <httplib.h>

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "binflow/report_page.hpp"

namespace binflow {

namespace {

// One completed bin as the page's rows: [bin, rank, start, end, wall, cpu, threads,
// peak_rss, status].
std::string bin_row(const MonitoredBin& b) {
  const BinStats& s = b.stats;
  return fmt::format("[{},{},{},{},{},{},{},{},{}]", s.index, s.rank, json_number(s.start),
                     json_number(s.end), json_number(s.wall), json_number(s.cpu), s.threads,
                     s.peak_rss_kib, json_string(b.status));
}

std::string state_json(const RunSnapshot& s, const std::vector<MonitoredBin>& bins,
                       bool report_ready) {
  std::string rows;
  for (std::size_t i = 0; i < bins.size(); ++i) {
    if (i) rows += ',';
    rows += bin_row(bins[i]);
  }
  return fmt::format(R"({{"map":{},"total":{},"done":{},"failed":{},"resumed":{},"ranks":{},)"
                     R"("ranks_working":{},"elapsed":{},"eta":{},"finished":{},"version":{},)"
                     R"("report_ready":{},"bins":[{}]}})",
                     json_string(s.map), s.total, s.done, s.failed, s.resumed, s.ranks,
                     s.ranks_working, json_number(s.elapsed), json_number(s.eta),
                     s.finished ? "true" : "false", s.version, report_ready ? "true" : "false",
                     rows);
}

// Sends `body` as it is. Debian's cpp-httplib compresses every text body a browser accepts
// compressed, with brotli at its slowest quality: 4.9 MB of page took seconds per request.
// A content provider of known length is sent uncompressed (loopback needs no compression).
// `sent`, if given, runs once the whole body has been written.
void send(httplib::Response& res, std::shared_ptr<const std::string> body, const char* type,
          std::function<void()> sent = nullptr) {
  const std::size_t size = body->size();
  res.set_content_provider(
      size, type,
      [body = std::move(body)](std::size_t offset, std::size_t length, httplib::DataSink& sink) {
        return sink.write(body->data() + offset, length);
      },
      [sent = std::move(sent)](bool success) {
        if (success && sent) sent();
      });
}

}  // namespace

class Dashboard::Server {
public:
  Server(const RunMonitor& monitor, std::string page)
      : monitor_(monitor), page_(std::make_shared<const std::string>(std::move(page))) {
    // A worker serves one connection at a time, for as long as it stays open: browsers open
    // spare connections and keep them alive, which held both workers of a pool of 2 for 5 s
    // (the page then took seconds to load). Four workers, connections closed after each
    // request and idle ones after 1 s serve a few pages polling once a second; the threads
    // sleep in poll() and take no core from the run.
    http_.new_task_queue = [] { return new httplib::ThreadPool(4); };
    http_.set_keep_alive_max_count(1);
    http_.set_read_timeout(1, 0);
    http_.Get("/", [this](const httplib::Request&, httplib::Response& res) {
      send(res, page_, "text/html; charset=utf-8");
    });
    // Browsers ask for an icon; "no content" keeps their consoles free of a 404.
    http_.Get("/favicon.ico",
              [](const httplib::Request&, httplib::Response& res) { res.status = 204; });
    http_.Get("/state.json", [this](const httplib::Request& req, httplib::Response& res) {
      serve_state(req, res);
    });
    http_.Get("/report.json", [this](const httplib::Request&, httplib::Response& res) {
      std::shared_ptr<const std::string> report;
      {
        std::lock_guard lock(mutex_);
        report = report_;
      }
      if (!report) {
        res.status = 404;
        return;
      }
      send(res, std::move(report), "application/json", [this] { final_sent(); });
    });
  }

  bool bind(int port) {
    port_ = port;
    return http_.bind_to_port("127.0.0.1", port);
  }
  void run() {
    thread_ = std::thread([this] { http_.listen_after_bind(); });
  }
  ~Server() {
    http_.stop();
    if (thread_.joinable()) thread_.join();
  }

  [[nodiscard]] int port() const { return port_; }

  void set_report(std::string report) {
    auto shared = std::make_shared<const std::string>(std::move(report));
    std::lock_guard lock(mutex_);
    report_ = std::move(shared);
  }

  // Until the page has what it needs for the end of the run: the report, or (a run without
  // results) the final state.
  void linger(std::chrono::milliseconds limit) {
    std::unique_lock lock(mutex_);
    // Only a page that is watching (polled within the last 3 s) is waited for.
    const auto watching = [&] {
      return std::chrono::steady_clock::now() - last_poll_ < std::chrono::seconds(3);
    };
    seen_.wait_for(lock, limit, [&] { return final_seen_ || !watching(); });
  }

private:
  void serve_state(const httplib::Request& req, httplib::Response& res) {
    std::size_t since = 0;
    if (req.has_param("since")) {
      try {
        since = std::stoul(req.get_param_value("since"));
      } catch (const std::exception&) {
        res.status = 400;
        return;
      }
    }
    const RunSnapshot snapshot = monitor_.snapshot();
    const std::vector<MonitoredBin> bins = monitor_.bins_since(since);
    bool ready = false;
    {
      std::lock_guard lock(mutex_);
      ready = report_ != nullptr;
      last_poll_ = std::chrono::steady_clock::now();
    }
    res.set_header("Cache-Control", "no-store");
    // A run that ends without results has no report: its final state is the last word.
    std::function<void()> sent;
    if (snapshot.finished && !ready) sent = [this] { final_sent(); };
    send(res, std::make_shared<const std::string>(state_json(snapshot, bins, ready)),
         "application/json", std::move(sent));
  }

  void final_sent() {
    std::lock_guard lock(mutex_);
    final_seen_ = true;
    seen_.notify_all();
  }

  const RunMonitor& monitor_;
  const std::shared_ptr<const std::string> page_;
  httplib::Server http_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mutex_;
  std::condition_variable seen_;
  std::shared_ptr<const std::string> report_;
  std::chrono::steady_clock::time_point last_poll_{};
  bool final_seen_ = false;
};

Dashboard::Dashboard(std::unique_ptr<Server> server) : server_(std::move(server)) {}
Dashboard::~Dashboard() = default;

std::unique_ptr<Dashboard> Dashboard::start(int port, const RunMonitor& monitor,
                                            const std::string& page_json, std::string& problem) {
  auto server = std::make_unique<Server>(monitor, report_page(page_json, "binflow: live run"));
  if (!server->bind(port)) {
    problem = fmt::format(
        "dashboard: cannot listen on 127.0.0.1:{} (in use, or not allowed); the run goes on "
        "without a dashboard",
        port);
    return nullptr;
  }
  server->run();
  return std::unique_ptr<Dashboard>(new Dashboard(std::move(server)));
}

std::string Dashboard::url() const { return fmt::format("http://127.0.0.1:{}/", server_->port()); }

void Dashboard::set_report(std::string report_json) { server_->set_report(std::move(report_json)); }

void Dashboard::linger(std::chrono::milliseconds limit) { server_->linger(limit); }

}  // namespace binflow
