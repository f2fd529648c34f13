// The progress report's text (bar, batch line, durations) and RunLogSink's status handling:
// the bar is erased before log text reaches the console and redrawn after it, a batch line
// never cuts a buffered log line, and the log file never holds progress text.
#include "binflow/progress.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "binflow/ordered_log.hpp"
#include "temp_dir.hpp"

namespace {

using binflow::format_duration;
using binflow::format_progress_bar;
using binflow::format_progress_line;
using binflow::RunSnapshot;

RunSnapshot snapshot(std::int64_t done, std::int64_t total, double eta) {
  RunSnapshot s;
  s.map = "bins";
  s.total = total;
  s.done = done;
  s.failed = 2;
  s.elapsed = 12.34;
  s.eta = eta;
  return s;
}

TEST(FormatDuration, TenthsUnderAMinuteThenMinutesThenHours) {
  EXPECT_EQ(format_duration(12.34, true), "12.3 s");
  EXPECT_EQ(format_duration(12.34, false), "13 s");  // an ETA rounds up
  EXPECT_EQ(format_duration(0.0, false), "0 s");
  EXPECT_EQ(format_duration(-1.0, true), "0.0 s");
  EXPECT_EQ(format_duration(59.99, true), "1 min 00 s");  // never "60.0 s"
  EXPECT_EQ(format_duration(59.2, false), "1 min 00 s");  // never "60 s"
  EXPECT_EQ(format_duration(58.2, false), "59 s");
  EXPECT_EQ(format_duration(245.2, true), "4 min 05 s");
  EXPECT_EQ(format_duration(245.2, false), "4 min 06 s");
  EXPECT_EQ(format_duration(3600.0, true), "1 h 00 min");
  EXPECT_EQ(format_duration(7659.0, true), "2 h 07 min");
  EXPECT_EQ(format_duration(360000.0, true), "100 h 00 min");
}

TEST(FormatProgressLine, CompletedBinsPercentFailedElapsedEta) {
  EXPECT_EQ(format_progress_line(snapshot(120, 250, 13.0), "synthetic"),
            "binflow: progress synthetic:bins 120/250 bins (48%), 2 failed, 12.3 s elapsed, "
            "ETA 13 s");
}

TEST(FormatProgressLine, EtaUnknownBeforeTheFirstBinAndPercentRoundedDown) {
  RunSnapshot s = snapshot(0, 250, -1.0);
  s.failed = 0;
  EXPECT_EQ(format_progress_line(s, "synthetic"),
            "binflow: progress synthetic:bins 0/250 bins (0%), 0 failed, 12.3 s elapsed, ETA ?");
  EXPECT_NE(format_progress_line(snapshot(249, 250, 0.1), "synthetic").find("(99%)"),
            std::string::npos);
}

TEST(FormatProgressLine, MapNamedAfterTheToolIsNamedOnce) {
  RunSnapshot s = snapshot(1, 4, 2.0);
  s.map = "lightcurve";
  EXPECT_EQ(format_progress_line(s, "lightcurve").rfind("binflow: progress lightcurve 1/4", 0), 0U);
}

TEST(FormatProgressBar, FillsInProportionToCompletedBins) {
  // 120 columns: room for the bar at its widest (40).
  const std::string line = format_progress_bar(snapshot(120, 240, 13.0), "synthetic", 120);
  EXPECT_EQ(line, "synthetic:bins [" + std::string(20, '#') + std::string(20, '-') +
                      "]  120/240 bins  2 failed  12.3 s  ETA 13 s");
}

TEST(FormatProgressBar, ShrinksToTheTerminalAndNeverFillsItsLastColumn) {
  for (const int columns : {100, 80, 60, 40, 20, 5}) {
    const std::string line = format_progress_bar(snapshot(7, 10, 3600.0), "lightcurve", columns);
    EXPECT_LE(line.size(), static_cast<std::size_t>(columns - 1)) << line;
  }
  // 59 characters without the bar: 73 columns leave it 10 (72 - 59 - 3 for " [" and "]").
  const std::string narrow = format_progress_bar(snapshot(7, 10, 3600.0), "synthetic", 73);
  EXPECT_EQ(narrow, "synthetic:bins [#######---]  7/10 bins  2 failed  12.3 s  ETA 1 h 00 min");
  // Below 10 characters of bar there is none, the counts stay.
  const std::string tiny = format_progress_bar(snapshot(7, 10, 3600.0), "synthetic", 72);
  EXPECT_EQ(tiny.find('['), std::string::npos) << tiny;
  EXPECT_NE(tiny.find("7/10 bins"), std::string::npos) << tiny;
}

TEST(FormatProgressBar, NoFailedWordWithoutFailuresAndUnknownEta) {
  RunSnapshot s = snapshot(0, 10, -1.0);
  s.failed = 0;
  const std::string line = format_progress_bar(s, "synthetic", 200);
  EXPECT_EQ(line.find("failed"), std::string::npos) << line;
  EXPECT_NE(line.find("[" + std::string(40, '-') + "]  0/10 bins  12.3 s  ETA ?"),
            std::string::npos)
      << line;
}

// ---- RunLogSink's status line ----

// Standard output and standard error both into one file (O_APPEND: the bytes land in the
// order of the write calls), as on a terminal where the bar and the log share the screen.
class ConsoleCapture : public binflow::testing_support::TempDirTest {
protected:
  void SetUp() override {
    TempDirTest::SetUp();
    screen_ = path("screen");
    std::fflush(stdout);
    std::fflush(stderr);
    saved_out_ = ::dup(STDOUT_FILENO);
    saved_err_ = ::dup(STDERR_FILENO);
    const int fd = ::open(screen_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    ASSERT_GE(fd, 0);
    ::dup2(fd, STDOUT_FILENO);
    ::dup2(fd, STDERR_FILENO);
    ::close(fd);
  }
  void TearDown() override {
    restore();
    TempDirTest::TearDown();
  }
  // The captured bytes; the console is back to the test's own afterwards.
  std::string screen() {
    restore();
    return slurp(screen_);
  }
  static std::string slurp(const std::string& file) {
    std::ifstream in(file, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }

private:
  void restore() {
    if (saved_out_ < 0) return;
    std::fflush(stdout);
    ::dup2(saved_out_, STDOUT_FILENO);
    ::dup2(saved_err_, STDERR_FILENO);
    ::close(saved_out_);
    ::close(saved_err_);
    saved_out_ = saved_err_ = -1;
  }
  std::string screen_;
  int saved_out_ = -1;
  int saved_err_ = -1;
};

const std::string erase = "\r\033[K";
// Sinks that flush only when told to (or at a status change), and ones that flush every write.
constexpr std::chrono::milliseconds never = std::chrono::hours(1);
constexpr std::chrono::milliseconds always{0};
std::string draw(const std::string& line) { return "\r" + line + "\033[K"; }

TEST_F(ConsoleCapture, LogTextWhileABarIsShownIsEraseTextRedraw) {
  const std::string log = path("run.log");
  {
    binflow::RunLogSink sink(log, true, never);
    sink.open_file();
    sink.write("before\n");
    sink.show_status("bar 1");
    sink.write("bin 0\n  line\n");
    sink.show_status("bar 2");
    sink.write("bin 1\n");
    sink.clear_status();
    sink.write("summary\n");
    sink.close();
  }
  // Without a timed flush the text is held until the next status (drawn after it) or the clear.
  EXPECT_EQ(screen(), "before\n" + draw("bar 1") + erase + "bin 0\n  line\n" + draw("bar 2") +
                          erase + "bin 1\n" + "summary\n");
  EXPECT_EQ(slurp(log), "before\nbin 0\n  line\nbin 1\nsummary\n");
}

TEST_F(ConsoleCapture, UnderABarATimedFlushWritesTheTextBetweenEraseAndRedraw) {
  binflow::RunLogSink sink("", true, always);
  sink.show_status("bar");
  sink.write("bin 0\n");
  EXPECT_EQ(slurp(path("screen")), draw("bar") + erase + "bin 0\n" + draw("bar"));
  sink.write("bin 1\n");
  EXPECT_EQ(screen(),
            draw("bar") + erase + "bin 0\n" + draw("bar") + erase + "bin 1\n" + draw("bar"));
}

TEST_F(ConsoleCapture, WithoutABarTheConsoleGetsOnlyTheLog) {
  {
    binflow::RunLogSink sink("", true);
    sink.write("a\n");
    sink.clear_status();  // nothing shown: nothing to erase
    sink.write("b\n");
  }
  EXPECT_EQ(screen(), "a\nb\n");
}

TEST_F(ConsoleCapture, BatchLineComesAfterTheBufferedLogTextAndOnlyOnTheConsole) {
  const std::string log = path("run.log");
  {
    binflow::RunLogSink sink(log, true, never);
    sink.open_file();
    // Held in stdout's buffer, not yet flushed.
    sink.write("bin 0\n");
    sink.progress_line("binflow: progress x 1/2 bins");
    sink.write("bin 1\n");
    sink.close();
  }
  EXPECT_EQ(screen(), "bin 0\nbinflow: progress x 1/2 bins\nbin 1\n");
  EXPECT_EQ(slurp(log), "bin 0\nbin 1\n");
}

// The thread: lines every interval with the monitor's completed bins, none before the first
// interval.
TEST_F(ConsoleCapture, ProgressPrintsPeriodicLinesOfCompletedBins) {
  binflow::RunMonitor monitor;
  binflow::RunLogSink sink("", true);
  monitor.map_started("bins", 10, 0, 1);
  {
    const binflow::Progress progress(monitor, sink,
                                     {binflow::ProgressConfig::Mode::lines, 0.1, 0, "synthetic"});
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(slurp(path("screen")), "");  // none before the first interval
    for (int i = 0; i < 3; ++i) monitor.bin_completed(binflow::BinStats{}, "ok");
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  const std::string text = screen();
  EXPECT_EQ(text.rfind("binflow: progress synthetic:bins 3/10 bins (30%), 0 failed, ", 0), 0U)
      << text;
  EXPECT_EQ(text.back(), '\n') << text;
}

// Stopping wakes the thread: a run never waits for the next interval to end.
TEST_F(ConsoleCapture, ProgressStopsAtOnceAndErasesItsBar) {
  binflow::RunMonitor monitor;
  binflow::RunLogSink sink("", true);
  monitor.map_started("bins", 10, 0, 1);
  std::optional<binflow::Progress> lines;
  lines.emplace(
      monitor, sink,
      binflow::ProgressConfig{binflow::ProgressConfig::Mode::lines, 3600.0, 0, "synthetic"});
  std::optional<binflow::Progress> bar;
  bar.emplace(monitor, sink,
              binflow::ProgressConfig{binflow::ProgressConfig::Mode::bar, 0.0, 80, "synthetic"});
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // one redraw at 0.2 s
  const auto stopping = std::chrono::steady_clock::now();
  lines.reset();
  bar.reset();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - stopping).count();
  EXPECT_LT(seconds, 0.05);
  const std::string text = screen();
  // The bar was drawn, and erased last.
  EXPECT_EQ(text.rfind("\rsynthetic:bins [", 0), 0U) << text;
  EXPECT_NE(text.find("0/10 bins"), std::string::npos) << text;
  EXPECT_EQ(text.substr(text.size() - erase.size()), erase) << text;
  EXPECT_EQ(text.find('\n'), std::string::npos) << text;
}

}  // namespace
