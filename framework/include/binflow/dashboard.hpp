#pragma once
// The live dashboard (standard parameter dashboard=PORT): rank 0 serves the report page on
// http://127.0.0.1:PORT while the run goes on. The page polls /state.json (the RunMonitor's
// snapshot and the bins completed since its last poll) and, once the run has written its
// results, draws the full report from /report.json. The server's threads only read the
// monitor's snapshots; nothing of the run waits for them.
#include <chrono>
#include <memory>
#include <string>

#include "binflow/run_monitor.hpp"

namespace binflow {

class Dashboard {
public:
  /// Serves on 127.0.0.1:`port` from two threads of its own. `page_json` is the page's
  /// document: what the run is (tool, parameters) and where to poll. Returns null and sets
  /// `problem` (one line) if the port cannot be bound: a dashboard is never worth a run.
  static std::unique_ptr<Dashboard> start(int port, const RunMonitor& monitor,
                                          const std::string& page_json, std::string& problem);
  Dashboard(const Dashboard&) = delete;
  Dashboard& operator=(const Dashboard&) = delete;
  /// Stops serving (closes the socket, joins the threads).
  ~Dashboard();

  [[nodiscard]] std::string url() const;
  /// The final report's document (report_json), served from now on at /report.json.
  void set_report(std::string report_json);
  /// At the end of a run: waits until a page that polled in the last few seconds has seen the
  /// final state, at most `limit`, so that a page open on a short run does not lose it.
  void linger(std::chrono::milliseconds limit);

private:
  class Server;
  explicit Dashboard(std::unique_ptr<Server> server);
  std::unique_ptr<Server> server_;
};

}  // namespace binflow
