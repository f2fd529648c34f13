// The checkpoint journal: records survive a reopen field by field, a torn or corrupt tail
// is cut without losing the records before it, a journal of another configuration or a
// file that is no journal is refused untouched, and writes are batched as documented.
#include "binflow/checkpoint.hpp"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "binflow/error.hpp"
#include "usage_message.hpp"

namespace {

namespace fs = std::filesystem;
using binflow::Checkpoint;
using binflow::CompletedBin;
using binflow::UsageError;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The fingerprint as the driver builds it: "key=value" lines.
const std::string kFingerprint = "tool=synthetic\nnbins=40\nseed=7\nmodel=powerlaw\n";

CompletedBin make_bin(const std::string& map, std::int64_t position, const std::string& status) {
  CompletedBin bin;
  bin.map = map;
  bin.position = position;
  bin.status = status;
  bin.message = status == "failed" ? "fit did not converge" : "";
  bin.row = {kNaN,
             1.5 * static_cast<double>(position) - 0.25,
             std::int64_t{-3} * position,
             std::numeric_limits<std::int64_t>::min(),
             std::string{},
             fmt::format("{}:{}\nwith a newline", map, position) + std::string("\0 and a NUL", 11)};
  bin.log = fmt::format("bin {} of {}\n  warning: a line\n", position, map);
  bin.stats.index = 1000 + position;
  bin.stats.rank = static_cast<int>(position % 3);
  bin.stats.start = 0.5 * static_cast<double>(position);
  bin.stats.end = 0.5 * static_cast<double>(position) + 0.125;
  bin.stats.wall = 0.125;
  bin.stats.cpu = 0.375;
  bin.stats.threads = 4;
  bin.stats.peak_rss_kib = 123456 + position;
  bin.stats.resumed = position % 2 == 1;
  return bin;
}

// Field-by-field equality; NaN cells compare equal to NaN.
void expect_same(const CompletedBin& got, const CompletedBin& want) {
  SCOPED_TRACE(fmt::format("bin {} of map '{}'", want.position, want.map));
  EXPECT_EQ(got.map, want.map);
  EXPECT_EQ(got.position, want.position);
  EXPECT_EQ(got.status, want.status);
  EXPECT_EQ(got.message, want.message);
  ASSERT_EQ(got.row.size(), want.row.size());
  for (std::size_t i = 0; i < want.row.size(); ++i) {
    ASSERT_EQ(got.row[i].index(), want.row[i].index()) << "cell " << i;
    if (const auto* d = std::get_if<double>(&want.row[i])) {
      const double g = std::get<double>(got.row[i]);
      if (std::isnan(*d)) {
        EXPECT_TRUE(std::isnan(g)) << "cell " << i;
      } else {
        EXPECT_EQ(g, *d) << "cell " << i;
      }
    } else {
      EXPECT_EQ(got.row[i], want.row[i]) << "cell " << i;
    }
  }
  EXPECT_EQ(got.log, want.log);
  EXPECT_EQ(got.stats.index, want.stats.index);
  EXPECT_EQ(got.stats.rank, want.stats.rank);
  EXPECT_EQ(got.stats.start, want.stats.start);
  EXPECT_EQ(got.stats.end, want.stats.end);
  EXPECT_EQ(got.stats.wall, want.stats.wall);
  EXPECT_EQ(got.stats.cpu, want.stats.cpu);
  EXPECT_EQ(got.stats.threads, want.stats.threads);
  EXPECT_EQ(got.stats.peak_rss_kib, want.stats.peak_rss_kib);
  EXPECT_EQ(got.stats.resumed, want.stats.resumed);
}

using binflow::testing_support::usage_message;

class CheckpointTest : public testing::Test {
protected:
  void SetUp() override {
    dir_ = fs::path(testing::TempDir()) /
           fmt::format("binflow_checkpoint_test_{}_{}", ::getpid(),
                       testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    path_ = (dir_ / "out.h5.ckpt").string();
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  [[nodiscard]] std::uintmax_t size() const { return fs::file_size(path_); }
  static std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }
  static void spit(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  }
  fs::path dir_;
  std::string path_;
};

TEST_F(CheckpointTest, ReopenedJournalReturnsTheBinsOfEachMap) {
  const std::vector<CompletedBin> bins = {
      make_bin("lightcurve", 0, "ok"), make_bin("lightcurve", 1, "failed"),
      make_bin("spectrum", 0, "ok"), make_bin("lightcurve", 2, "ok")};
  {
    Checkpoint c(path_, kFingerprint, false);
    c.open();  // as the driver does once the inputs are checked
    for (const auto& bin : bins) c.append(bin);
    c.flush();
  }
  Checkpoint r(path_, kFingerprint, true);
  r.open();                            // as the driver does once the inputs are checked
  EXPECT_EQ(r.loaded(), bins.size());  // failed bins are loaded, just not returned
  const auto lc = r.completed("lightcurve");
  ASSERT_EQ(lc.size(), 2U);
  expect_same(lc[0], bins[0]);
  expect_same(lc[1], bins[3]);
  const auto sp = r.completed("spectrum");
  ASSERT_EQ(sp.size(), 1U);
  expect_same(sp[0], bins[2]);
  EXPECT_TRUE(r.completed("other").empty());
  EXPECT_TRUE(r.completed("").empty());
  EXPECT_TRUE(r.completed("Lightcurve").empty());
}

TEST_F(CheckpointTest, DestructorFlushesPendingRecords) {
  {
    Checkpoint c(path_, kFingerprint, false);
    c.open();  // as the driver does once the inputs are checked
    c.append(make_bin("m", 0, "ok"));
    c.append(make_bin("m", 1, "ok"));
  }
  Checkpoint r(path_, kFingerprint, true);
  r.open();  // as the driver does once the inputs are checked
  EXPECT_EQ(r.completed("m").size(), 2U);
}

TEST_F(CheckpointTest, ResumeAppendsAfterTheLoadedRecords) {
  {
    Checkpoint c(path_, kFingerprint, false);
    c.open();  // as the driver does once the inputs are checked
    c.append(make_bin("m", 0, "ok"));
  }
  {
    Checkpoint c(path_, kFingerprint, true);
    c.open();  // as the driver does once the inputs are checked
    ASSERT_EQ(c.loaded(), 1U);
    c.append(make_bin("m", 1, "ok"));
  }
  Checkpoint r(path_, kFingerprint, true);
  r.open();  // as the driver does once the inputs are checked
  const auto got = r.completed("m");
  ASSERT_EQ(got.size(), 2U);
  expect_same(got[0], make_bin("m", 0, "ok"));
  expect_same(got[1], make_bin("m", 1, "ok"));
}

TEST_F(CheckpointTest, ResumeWithoutAJournalStartsAnEmptyOne) {
  {
    Checkpoint c(path_, kFingerprint, true);
    c.open();  // as the driver does once the inputs are checked
    EXPECT_EQ(c.loaded(), 0U);
    EXPECT_TRUE(fs::exists(path_));
    c.append(make_bin("m", 0, "ok"));
  }
  Checkpoint r(path_, kFingerprint, true);
  r.open();  // as the driver does once the inputs are checked
  EXPECT_EQ(r.loaded(), 1U);
}

// Sizes of a journal holding the header, then 1, 2 and 3 records.
struct Layout {
  std::uintmax_t header = 0;
  std::vector<std::uintmax_t> after;  // after[k]: size with k + 1 records
};

class CheckpointDamage : public CheckpointTest {
protected:
  void SetUp() override {
    CheckpointTest::SetUp();
    Checkpoint c(path_, kFingerprint, false);
    c.open();  // as the driver does once the inputs are checked
    layout_.header = size();
    for (std::int64_t p = 0; p < 3; ++p) {
      c.append(make_bin("m", p, "ok"));
      c.flush();
      layout_.after.push_back(size());
    }
    pristine_ = slurp(path_);
  }
  Layout layout_;
  std::string pristine_;
};

TEST_F(CheckpointDamage, TornLastRecordIsCutAndLaterAppendsAreReadable) {
  const std::uintmax_t two = layout_.after[1];
  const std::uintmax_t three = layout_.after[2];
  ASSERT_GT(three, two + 16);
  for (std::uintmax_t cut = two; cut < three; ++cut) {
    SCOPED_TRACE(
        fmt::format("journal cut at byte {} (last record spans [{}, {}))", cut, two, three));
    spit(path_, pristine_);
    fs::resize_file(path_, cut);
    {
      Checkpoint c(path_, kFingerprint, true);
      c.open();  // as the driver does once the inputs are checked
      const auto got = c.completed("m");
      ASSERT_EQ(got.size(), 2U);
      expect_same(got[0], make_bin("m", 0, "ok"));
      expect_same(got[1], make_bin("m", 1, "ok"));
      EXPECT_EQ(size(), two);  // the torn tail is gone
      EXPECT_EQ(c.damage(), "");  // what a kill leaves is no damage
      c.append(make_bin("m", 9, "ok"));
    }
    Checkpoint r(path_, kFingerprint, true);
    r.open();  // as the driver does once the inputs are checked
    const auto got = r.completed("m");
    ASSERT_EQ(got.size(), 3U);
    expect_same(got[2], make_bin("m", 9, "ok"));
  }
}

TEST_F(CheckpointDamage, CorruptLastRecordIsDroppedAlone) {
  const std::uintmax_t two = layout_.after[1];
  const std::uintmax_t three = layout_.after[2];
  // Every byte of the last record's payload (after its length and checksum words).
  for (std::uintmax_t at = two + 16; at < three; ++at) {
    SCOPED_TRACE(fmt::format("byte {} flipped", at));
    std::string bytes = pristine_;
    bytes[at] = static_cast<char>(bytes[at] ^ 0x20);
    spit(path_, bytes);
    Checkpoint c(path_, kFingerprint, true);
    c.open();  // as the driver does once the inputs are checked
    const auto got = c.completed("m");
    ASSERT_EQ(got.size(), 2U);
    expect_same(got[1], make_bin("m", 1, "ok"));
  }
}

TEST_F(CheckpointDamage, CorruptMiddleRecordEndsTheUsableJournal) {
  std::string bytes = pristine_;
  const std::uintmax_t at = layout_.after[0] + 16 + 3;
  bytes[at] = static_cast<char>(bytes[at] ^ 0x01);
  spit(path_, bytes);
  Checkpoint c(path_, kFingerprint, true);
  c.open();  // as the driver does once the inputs are checked
  const auto got = c.completed("m");
  ASSERT_EQ(got.size(), 1U);
  expect_same(got[0], make_bin("m", 0, "ok"));
  EXPECT_NE(c.damage().find(fmt::format("the record at byte {} of {} fails its checksum",
                                        layout_.after[0], pristine_.size())),
            std::string::npos)
      << c.damage();
  EXPECT_NE(c.damage().find("the 1 bins before it are kept"), std::string::npos) << c.damage();
}

// One run per outfile: the lock is an open-file-description lock, so a second open of the same
// file conflicts even in this process, as a second run's would.
TEST_F(CheckpointTest, SecondLockOfTheSameCheckpointIsRefusedAsARunInProgress) {
  {
    const binflow::CheckpointLock first = binflow::CheckpointLock::acquire(path_, "out.h5");
    ASSERT_TRUE(fs::exists(path_));
    EXPECT_EQ(size(), 0U);
    EXPECT_FALSE(binflow::journal_exists(path_));  // empty: a run that is starting
    const std::string message =
        usage_message([&] { (void)binflow::CheckpointLock::acquire(path_, "out.h5"); });
    EXPECT_EQ(message.rfind("outfile: another run is in progress on out.h5 (pid ", 0), 0U)
        << message;
    EXPECT_NE(message.find(fmt::format("holds the lock of {})", path_)), std::string::npos)
        << message;
    EXPECT_EQ(message.find("interrupted"), std::string::npos) << message;
  }
  EXPECT_FALSE(fs::exists(path_));  // the empty file goes with the lock
  const binflow::CheckpointLock again = binflow::CheckpointLock::acquire(path_, "out.h5");
  EXPECT_TRUE(fs::exists(path_));
}

TEST_F(CheckpointTest, LockKeepsAJournalAndItsBytes) {
  spit(path_, "journal of an interrupted run");
  {
    const binflow::CheckpointLock lock = binflow::CheckpointLock::acquire(path_, "out.h5");
    EXPECT_TRUE(binflow::journal_exists(path_));
    Checkpoint c(path_, kFingerprint, false);
    c.open();  // the run replaces the old journal under its lock
    c.append(make_bin("m", 0, "ok"));
    c.flush();
    c.remove();  // the output is in place
    // Removed while locked: a run that opened the old name locks a file nobody uses, sees
    // it and opens the name again.
    const binflow::CheckpointLock next = binflow::CheckpointLock::acquire(path_, "out.h5");
    EXPECT_TRUE(fs::exists(path_));
  }
  EXPECT_FALSE(fs::exists(path_));
  spit(path_, "journal of an interrupted run");
  { const binflow::CheckpointLock lock = binflow::CheckpointLock::acquire(path_, "out.h5"); }
  EXPECT_EQ(slurp(path_), "journal of an interrupted run");
}

TEST_F(CheckpointTest, EmptyFileIsNoJournalToResume) {
  spit(path_, "");
  Checkpoint c(path_, kFingerprint, true);
  EXPECT_EQ(c.loaded(), 0U);
}

TEST_F(CheckpointTest, LockOnADirectoryIsBadInput) {
  fs::create_directory(path_);
  EXPECT_NE(usage_message([&] { (void)binflow::CheckpointLock::acquire(path_, "out.h5"); })
                .find("is not a regular file"),
            std::string::npos);
}

TEST_F(CheckpointDamage, DifferentFingerprintIsRefusedNamingTheFirstDifference) {
  const std::string other = "tool=synthetic\nnbins=40\nseed=8\nmodel=cutoff\n";
  const std::string message = usage_message([&] { Checkpoint c(path_, other, true); });
  ASSERT_FALSE(message.empty()) << "no UsageError";
  EXPECT_NE(message.find(path_), std::string::npos) << message;
  EXPECT_NE(message.find("'seed=7'"), std::string::npos) << message;
  EXPECT_NE(message.find("'seed=8'"), std::string::npos) << message;
  EXPECT_EQ(message.find("model="), std::string::npos) << "names more than the first: " << message;
  EXPECT_EQ(message.find("nbins="), std::string::npos) << "names a matching line: " << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << "not one line: " << message;

  // A parameter the checkpoint does not have.
  const std::string longer = kFingerprint + "emin=0.1\n";
  const std::string extra = usage_message([&] { Checkpoint c(path_, longer, true); });
  EXPECT_NE(extra.find("'emin=0.1'"), std::string::npos) << extra;

  // A refused journal is left as it was and still resumes with its own configuration.
  EXPECT_EQ(slurp(path_), pristine_);
  Checkpoint c(path_, kFingerprint, true);
  c.open();  // as the driver does once the inputs are checked
  EXPECT_EQ(c.loaded(), 3U);
}

TEST_F(CheckpointDamage, WithoutResumeTheOldJournalIsReplaced) {
  {
    Checkpoint c(path_, "tool=other\n", false);
    c.open();  // as the driver does once the inputs are checked
    EXPECT_EQ(c.loaded(), 0U);
    // Header only, now holding the new fingerprint.
    EXPECT_EQ(size(), layout_.header - kFingerprint.size() + std::string("tool=other\n").size());
  }
  Checkpoint r(path_, "tool=other\n", true);  // the new fingerprint is the one stored
  r.open();                                   // as the driver does once the inputs are checked
  EXPECT_EQ(r.loaded(), 0U);
  EXPECT_NE(usage_message([&] { Checkpoint c(path_, kFingerprint, true); }), "");
}

TEST_F(CheckpointTest, FileThatIsNoCheckpointIsRefusedUntouched) {
  const std::string text = "time,flux\n1,2\n3,4\n";
  spit(path_, text);
  const std::string message = usage_message([&] { Checkpoint c(path_, kFingerprint, true); });
  EXPECT_NE(message.find(path_), std::string::npos) << message;
  EXPECT_NE(message.find("not a binflow checkpoint"), std::string::npos) << message;
  EXPECT_EQ(slurp(path_), text);

  // An empty file is what a run's CheckpointLock creates before its first write: no journal.
  spit(path_, "");
  EXPECT_EQ(usage_message([&] { Checkpoint c(path_, kFingerprint, true); }), "");
}

TEST_F(CheckpointTest, TruncatedHeaderIsRefused) {
  {
    Checkpoint c(path_, kFingerprint, false);
    c.open();
  }
  const std::string header = slurp(path_);
  for (std::size_t cut = 1; cut < header.size(); ++cut) {  // 0 bytes: no journal (above)
    SCOPED_TRACE(fmt::format("header cut at byte {} of {}", cut, header.size()));
    spit(path_, header.substr(0, cut));
    EXPECT_NE(usage_message([&] { Checkpoint c(path_, kFingerprint, true); }), "");
  }
}

TEST_F(CheckpointTest, RemoveDeletesTheJournal) {
  {
    Checkpoint c(path_, kFingerprint, false);
    c.open();  // as the driver does once the inputs are checked
    c.append(make_bin("m", 0, "ok"));
    c.flush();
    ASSERT_TRUE(fs::exists(path_));
    c.remove();
    EXPECT_FALSE(fs::exists(path_));
  }
  EXPECT_FALSE(fs::exists(path_)) << "the destructor brought the journal back";
}

TEST_F(CheckpointTest, WritesAreBatchedByCountAndTime) {
  Checkpoint c(path_, kFingerprint, false);
  c.open();  // as the driver does once the inputs are checked
  const std::uintmax_t header = size();
  ASSERT_GT(header, 0U);
  for (std::int64_t p = 0; p < 3; ++p) {
    c.append(make_bin("m", p, "ok"));
    c.flush_if_due();
  }
  EXPECT_EQ(size(), header) << "written before 256 records or 0.25 s";
  c.flush();
  const std::uintmax_t three = size();
  EXPECT_GT(three, header);

  // 255 pending records stay buffered, the 256th triggers a write.
  for (std::int64_t p = 0; p < 255; ++p) {
    c.append(make_bin("n", p, "ok"));
    c.flush_if_due();
  }
  EXPECT_EQ(size(), three);
  c.append(make_bin("n", 255, "ok"));
  c.flush_if_due();
  const std::uintmax_t all = size();
  EXPECT_GT(all, three);

  // One record is written once 0.25 s have passed.
  c.append(make_bin("o", 0, "ok"));
  c.flush_if_due();
  EXPECT_EQ(size(), all);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  c.flush_if_due();
  EXPECT_GT(size(), all);
}

// A flush with nothing pending must not leave the journal in "write at once" mode.
TEST_F(CheckpointTest, FlushWithNothingPendingDoesNotDefeatBatching) {
  Checkpoint c(path_, kFingerprint, false);
  c.open();  // as the driver does once the inputs are checked
  const std::uintmax_t header = size();
  c.flush();
  c.append(make_bin("m", 0, "ok"));
  c.flush_if_due();
  EXPECT_EQ(size(), header);
}

// Bad input found before the bins leaves an old journal exactly as it was: nothing is
// truncated, replaced or removed until open().
TEST_F(CheckpointTest, NothingIsTouchedBeforeOpen) {
  {
    Checkpoint c(path_, kFingerprint, false);
    c.open();
    c.append(make_bin("m", 0, "ok"));
    c.flush();
  }
  const auto size = fs::file_size(path_);
  {
    Checkpoint fresh(path_, "tool=other\n", false);  // clobber=yes, then refused
  }
  EXPECT_EQ(fs::file_size(path_), size);
  {
    Checkpoint fresh(path_, "tool=other\n", false);
    fresh.remove();  // the driver's clean-up after bad input: not this run's journal
  }
  ASSERT_TRUE(fs::exists(path_));
  Checkpoint r(path_, kFingerprint, true);
  EXPECT_EQ(r.loaded(), 1U);
}

}  // namespace
