#include "science/event_file.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <limits>
#include <span>
#include <system_error>
#include <utility>

#include <fmt/format.h>

#include "binflow/error.hpp"
#include "binflow/runtime.hpp"
#include "binflow/tool.hpp"
#include "science/gti.hpp"
#include "science/response.hpp"
#include "science/sorted_column.hpp"

namespace binflow::science {

namespace {

namespace fs = std::filesystem;

constexpr std::string_view format_name = "eventlist";
constexpr std::int64_t format_version = 1;
constexpr std::array<const char*, 4> event_columns = {"time", "energy", "ra", "dec"};

// The stride of the time index and so the largest read of one search (8 KiB). The index
// holds 8 bytes per 1024 events of the file (80 KiB for 10 M events): a search costs one
// read of at most 1024 times, about 15 000 instructions, where 4096 cost 60 000.
constexpr std::int64_t search_window = 1024;
// A range whose index brackets span at most this many rows has their times read at once
// (8 MiB at most, before the memory check; beyond, the two searches read 16 KiB).
constexpr std::int64_t one_read_rows = std::int64_t{1} << 20;

// Rows per collective write round: 4 chunks (2 MiB per column) keep the number of rounds,
// and so of collective calls, small without holding much memory.
constexpr std::int64_t round_rows = 4 * event_chunk_rows;

// Opens the file, telling "not HDF5" (the user's mistake) from an unreadable one.
h5::Location open_event_file(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw UsageError(fmt::format("{}: no such file", path));
  if (fs::is_directory(path, ec))
    throw UsageError(fmt::format("{}: is a directory, not an event file", path));
  try {
    return h5::open_file(path);
  } catch (const IoError& e) {
    if (H5Fis_hdf5(path.c_str()) == 0) {
      throw UsageError(fmt::format("{}: not an HDF5 file (expected an event file)", path));
    }
    // A regular file this process may read that HDF5 will not open is a damaged one
    // (truncated by an interrupted copy, most often): the user's input, not the I/O system.
    if (fs::is_regular_file(path, ec) && access(path.c_str(), R_OK) == 0) {
      throw UsageError(
          fmt::format("{}: damaged HDF5 file (truncated or corrupt): {}", path, e.what()));
    }
    throw;
  }
}

// Attribute and dataset reads whose failure, on a file that opened as HDF5, means the content
// is not what SCIENCE.md section 1 describes.
template <class Read>
auto root_attribute(const h5::Location& root, const std::string& path, const std::string& name,
                    Read read) {
  if (!root.has_attribute(name)) {
    throw UsageError(fmt::format("{}: root attribute '{}' is missing", path, name));
  }
  try {
    return read(name);
  } catch (const IoError& e) {
    throw UsageError(fmt::format("{}: root attribute '{}' is malformed: {}", path, name, e.what()));
  }
}

std::vector<double> numeric_dataset(const h5::Location& file, const std::string& path,
                                    const std::string& name) {
  if (!file.has(name)) throw UsageError(fmt::format("{}: dataset {} is missing", path, name));
  try {
    return file.read_doubles(name);
  } catch (const IoError& e) {
    throw UsageError(fmt::format("{}: dataset {} is malformed: {}", path, name, e.what()));
  }
}

Observation read_observation(const h5::Location& file, const std::string& path) {
  const auto text = [&](const std::string& n) { return file.read_string_attribute(n); };
  const auto integer = [&](const std::string& n) { return file.read_int_attribute(n); };
  const auto number = [&](const std::string& n) { return file.read_double_attribute(n); };
  const std::string format = root_attribute(file, path, "format", text);
  if (format != format_name) {
    throw UsageError(fmt::format("{}: root attribute 'format' is '{}', expected '{}'", path, format,
                                 format_name));
  }
  const std::int64_t version = root_attribute(file, path, "format_version", integer);
  if (version != format_version) {
    throw UsageError(
        fmt::format("{}: root attribute 'format_version' is {}, this binflow reads "
                    "version {}",
                    path, version, format_version));
  }
  Observation obs;
  ObservationInfo& info = obs.info;
  info.mjdref = root_attribute(file, path, "mjdref", number);
  info.object = root_attribute(file, path, "object", text);
  info.ra_pnt = root_attribute(file, path, "ra_pnt", number);
  info.dec_pnt = root_attribute(file, path, "dec_pnt", number);
  info.deadtime_fraction = root_attribute(file, path, "deadtime_fraction", number);
  const auto require = [&](bool ok, std::string_view name, double value, std::string_view what) {
    if (!ok) {
      throw UsageError(fmt::format("{}: root attribute '{}' is {}, {}", path, name, value, what));
    }
  };
  require(std::isfinite(info.mjdref), "mjdref", info.mjdref, "expected a finite MJD");
  require(std::isfinite(info.ra_pnt), "ra_pnt", info.ra_pnt, "expected a finite angle");
  require(std::isfinite(info.dec_pnt) && std::abs(info.dec_pnt) <= 90.0, "dec_pnt", info.dec_pnt,
          "expected a declination in [-90, 90]");
  require(info.deadtime_fraction >= 0.0 && info.deadtime_fraction < 1.0, "deadtime_fraction",
          info.deadtime_fraction, "expected a fraction in [0, 1)");

  obs.irf.energy = numeric_dataset(file, path, "/irf/energy");
  obs.irf.aeff = numeric_dataset(file, path, "/irf/aeff");
  obs.irf.psf_sigma = numeric_dataset(file, path, "/irf/psf_sigma");
  obs.irf.bkg_rate = numeric_dataset(file, path, "/irf/bkg_rate");
  static_cast<void>(Response(obs.irf, path));  // validates; messages name path and dataset

  obs.gti.start = numeric_dataset(file, path, "/gti/start");
  obs.gti.stop = numeric_dataset(file, path, "/gti/stop");
  validate_gti(obs.gti, path + ": /gti");
  return obs;
}

std::int64_t event_rows(const h5::Location& file, const std::string& path) {
  std::int64_t rows = -1;
  std::string first;
  for (const char* column : event_columns) {
    const std::string name = fmt::format("/events/{}", column);
    if (!file.has(name)) throw UsageError(fmt::format("{}: dataset {} is missing", path, name));
    std::int64_t n = 0;
    try {
      n = file.extent(name);
      static_cast<void>(file.read_doubles(name, 0, 0));  // checks that the values are numbers
    } catch (const IoError& e) {
      throw UsageError(fmt::format("{}: dataset {} is malformed: {}", path, name, e.what()));
    }
    if (rows >= 0 && n != rows) {
      throw UsageError(
          fmt::format("{}: dataset {} has {} rows but {} has {}", path, name, n, first, rows));
    }
    rows = n;
    first = name;
  }
  return rows;
}

void append(Events& to, const Events& from, std::size_t begin, std::size_t end) {
  const auto range = [&](const std::vector<double>& v, std::vector<double>& out) {
    out.insert(out.end(), v.begin() + static_cast<std::ptrdiff_t>(begin),
               v.begin() + static_cast<std::ptrdiff_t>(end));
  };
  range(from.time, to.time);
  range(from.energy, to.energy);
  range(from.ra, to.ra);
  range(from.dec, to.dec);
}

void drop_front(Events& events, std::size_t n) {
  for (auto* column : {&events.time, &events.energy, &events.ra, &events.dec}) {
    column->erase(column->begin(), column->begin() + static_cast<std::ptrdiff_t>(n));
  }
}

std::string temporary_name(const std::string& path, const Communicator& comm) {
  // Rank 0's pid, so that every rank opens the same file.
  std::string name = comm.is_root() ? fmt::format("{}.tmp.{}", path, ::getpid()) : std::string();
  comm.broadcast(name);
  return name;
}

}  // namespace

Observation default_observation(double duration_s, double tstart) {
  if (!std::isfinite(duration_s) || duration_s <= 0.0) {
    throw UsageError(fmt::format("duration: {} s is not a finite number > 0", duration_s));
  }
  if (!std::isfinite(tstart)) throw UsageError(fmt::format("tstart: {} is not finite", tstart));
  // Runs of 30 minutes with 2-minute gaps, as an IACT observes a source in wobble runs.
  constexpr double run = 1800.0;
  constexpr double gap = 120.0;
  Observation obs;
  obs.irf = default_irf();
  const double end = tstart + duration_s;
  for (std::int64_t k = 0;; ++k) {
    const double start = tstart + static_cast<double>(k) * (run + gap);
    if (start >= end) break;
    obs.gti.start.push_back(start);
    obs.gti.stop.push_back(std::min(start + run, end));
  }
  return obs;
}

// ---- reader ----

EventFileReader::EventFileReader(std::string path)
    : path_(std::move(path)),
      file_(open_event_file(path_)),
      observation_(read_observation(file_, path_)),
      rows_(event_rows(file_, path_)),
      time_(file_, "/events/time", 0),
      energy_(file_, "/events/energy", 0),
      ra_(file_, "/events/ra", 0),
      dec_(file_, "/events/dec", 0) {}

std::vector<double> EventFileReader::read_time(std::int64_t offset, std::int64_t count) const {
  time_rows_read_ += count;
  return time_.read(offset, count);
}

const SortedColumnIndex& EventFileReader::time_index() const {
  if (time_index_.empty()) {
    std::vector<double> every = time_.read_every(search_window);
    time_rows_read_ += static_cast<std::int64_t>(every.size());
    time_index_ = SortedColumnIndex(std::move(every), search_window, time_label());
  }
  return time_index_;
}

std::string EventFileReader::time_label() const { return path_ + ": /events/time"; }

const std::vector<double>& EventFileReader::time_index_values() const {
  const std::lock_guard lock(hdf5_);
  return time_index().values();
}

void EventFileReader::adopt_time_index(std::vector<double> values) const {
  const auto expected = static_cast<std::size_t>((rows_ + search_window - 1) / search_window);
  if (values.size() != expected) {
    throw UsageError(fmt::format("{}: a time index of {} values for {} rows (expected {})",
                                 time_label(), values.size(), rows_, expected));
  }
  const std::lock_guard lock(hdf5_);
  time_index_ = SortedColumnIndex(std::move(values), search_window, time_label());
}

std::int64_t EventFileReader::lower_bound(double t, std::int64_t lo, std::int64_t hi) const {
  const std::string column = time_label();
  const auto [from, to] = time_index().bracket(t, lo, hi);
  return lower_bound_sorted(
      [this](std::int64_t first, std::int64_t count) { return read_time(first, count); }, t, from,
      to, search_window, column);
}

Events EventFileReader::read_time_range(double t0, double t1, const BeforeRead& before_read) const {
  Buffers buffers;
  const EventsView view = view_time_range(t0, t1, before_read, buffers);
  Events events;
  events.time.assign(view.time.begin(), view.time.end());
  events.energy.assign(view.energy.begin(), view.energy.end());
  events.ra.assign(view.ra.begin(), view.ra.end());
  events.dec.assign(view.dec.begin(), view.dec.end());
  return events;
}

namespace {

// Whether every row passes the checks of check_rows() below: vectorisable passes without
// branches for the common case, where the columns are fine and no message is needed.
// |x| <= DBL_MAX is false exactly for infinities and NaN.
[[gnu::noinline]] bool rows_fine(const EventsView& v) {
  constexpr double max = std::numeric_limits<double>::max();
  const double* time = v.time.data();
  const double* energy = v.energy.data();
  const double* ra = v.ra.data();
  const double* dec = v.dec.data();
  const std::size_t n = v.size();
  double bad = 0.0;  // the number of failed conditions
#pragma omp simd reduction(+ : bad)
  for (std::size_t i = 0; i < n; ++i) {
    bad += (std::abs(time[i]) <= max ? 0.0 : 1.0) + (energy[i] > 0.0 ? 0.0 : 1.0) +
           (energy[i] <= max ? 0.0 : 1.0) + (std::abs(ra[i]) <= max ? 0.0 : 1.0) +
           (std::abs(dec[i]) <= 90.0 ? 0.0 : 1.0);
  }
#pragma omp simd reduction(+ : bad)
  for (std::size_t i = 1; i < n; ++i) bad += time[i] < time[i - 1] ? 1.0 : 0.0;
  return bad == 0.0;
}

// The first failing check of rows [first, first + n) as a UsageError naming the file, the
// column and the row, in a fixed order: time finite, time sorted, energy, ra, dec.
void check_rows(const EventsView& v, const std::string& path, std::int64_t first) {
  const auto check_finite = [&](std::span<const double> column, std::string_view name) {
    for (std::size_t i = 0; i < column.size(); ++i) {
      if (!std::isfinite(column[i])) {
        throw UsageError(fmt::format("{}: /events/{} is {} at row {}", path, name,
                                     describe_value(column[i]),
                                     first + static_cast<std::int64_t>(i)));
      }
    }
  };
  check_finite(v.time, "time");
  for (std::size_t i = 1; i < v.size(); ++i) {
    if (v.time[i] < v.time[i - 1]) {
      const auto row = first + static_cast<std::int64_t>(i);
      throw UsageError(
          fmt::format("{}: /events/time is not sorted (row {} < row {})", path, row, row - 1));
    }
  }
  check_finite(v.energy, "energy");
  check_finite(v.ra, "ra");
  check_finite(v.dec, "dec");
  // The domains of SCIENCE.md section 1: energies > 0 TeV, declinations within [-90, 90] deg.
  const auto check_domain = [&](std::span<const double> column, std::string_view name,
                                const auto& inside, std::string_view expected) {
    for (std::size_t i = 0; i < column.size(); ++i) {
      if (inside(column[i])) continue;
      throw UsageError(fmt::format("{}: /events/{} is {} at row {}, expected {}", path, name,
                                   column[i], first + static_cast<std::int64_t>(i), expected));
    }
  };
  check_domain(
      v.energy, "energy", [](double e) { return e > 0.0; }, "an energy > 0 TeV");
  check_domain(
      v.dec, "dec", [](double d) { return std::abs(d) <= 90.0; }, "a declination in [-90, 90] deg");
  throw InternalError(fmt::format("{}: rows from {} failed a check that none names", path, first));
}

}  // namespace

void EventFileReader::Buffers::reserve(std::size_t rows) {
  if (rows <= rows_) return;
  for (auto& column : columns_) column = std::make_unique_for_overwrite<double[]>(rows);
  rows_ = rows;
}

EventsView EventFileReader::view_time_range(double t0, double t1, const BeforeRead& before_read,
                                            Buffers& buffers) const {
  if (!(t0 < t1) || rows_ == 0) return {};
  std::unique_lock lock(hdf5_);
  // The rows of [t0, t1) lie between the index's brackets of t0 and t1. When those rows are
  // few (a bin, not a file), one read of their times and two searches in memory replace two
  // searches that read a window each: two library reads fewer per range.
  const auto [lo, lo_end] = time_index().bracket(t0, 0, rows_);
  const auto [hi_begin, hi] = time_index().bracket(t1, lo, rows_);
  std::int64_t first = 0;
  std::int64_t last = 0;
  std::size_t time_offset = 0;  // of row `first` in the time buffer
  if (hi - lo <= one_read_rows) {
    const auto span = static_cast<std::size_t>(hi - lo);
    buffers.reserve(span);
    const std::span<double> times(buffers.column(0), span);
    time_rows_read_ += hi - lo;
    time_.read_into(lo, times);
    check_sorted(times, time_label(), lo);
    first = lo + (std::lower_bound(times.begin(), times.end(), t0) - times.begin());
    last = lo + (std::lower_bound(times.begin(), times.end(), t1) - times.begin());
    time_offset = static_cast<std::size_t>(first - lo);
  } else {
    first = lower_bound(t0, 0, rows_);
    last = lower_bound(t1, first, rows_);
  }
  const auto count = static_cast<std::size_t>(last - first);
  if (count == 0) return {};
  if (before_read) before_read(last - first);
  buffers.reserve(time_offset + count);  // grows only on the two-search path (nothing read yet)
  const auto column = [&](std::size_t k, std::size_t offset = 0) {
    return std::span<double>(buffers.column(k) + offset, count);
  };
  if (hi - lo > one_read_rows) {
    time_rows_read_ += last - first;
    time_.read_into(first, column(0));
  }
  energy_.read_into(first, column(1));
  ra_.read_into(first, column(2));
  dec_.read_into(first, column(3));
  lock.unlock();
  const EventsView view{column(0, time_offset), column(1), column(2), column(3)};
  if (!rows_fine(view)) check_rows(view, path_, first);
  return view;
}

// ---- writer ----

EventFileWriter::EventFileWriter(std::string path, const Observation& observation,
                                 std::int64_t total_rows, const Communicator& comm)
    : path_(std::move(path)),
      temporary_(temporary_name(path_, comm)),
      comm_(comm),
      rank_(comm.rank()),
      file_(h5::create_file_parallel(temporary_, comm)),
      total_rows_(total_rows) {
  const ObservationInfo& info = observation.info;
  file_.write_attribute("format", format_name);
  file_.write_attribute("format_version", format_version);
  file_.write_attribute("mjdref", info.mjdref);
  file_.write_attribute("object", info.object);
  file_.write_attribute("ra_pnt", info.ra_pnt);
  file_.write_attribute("dec_pnt", info.dec_pnt);
  file_.write_attribute("deadtime_fraction", info.deadtime_fraction);
  file_.write_attribute("creator", fmt::format("binflow {}", version()));
  {
    const h5::Location irf = file_.create_group("irf");
    irf.write("energy", observation.irf.energy, "TeV", "energy grid of the response");
    irf.write("aeff", observation.irf.aeff, "cm2", "effective area");
    irf.write("psf_sigma", observation.irf.psf_sigma, "deg", "sigma of the 2-D Gaussian PSF");
    irf.write("bkg_rate", observation.irf.bkg_rate, "1/(s TeV deg2)", "background rate");
  }
  {
    const h5::Location gti = file_.create_group("gti");
    gti.write("start", observation.gti.start, "s", "good time interval start, MET");
    gti.write("stop", observation.gti.stop, "s", "good time interval stop (exclusive), MET");
  }
  {
    const h5::Location events = file_.create_group("events");
    events.create_doubles("time", total_rows_, event_chunk_rows, "s", "arrival time, MET, sorted");
    events.create_doubles("energy", total_rows_, event_chunk_rows, "TeV", "reconstructed energy");
    events.create_doubles("ra", total_rows_, event_chunk_rows, "deg",
                          "reconstructed right ascension");
    events.create_doubles("dec", total_rows_, event_chunk_rows, "deg", "reconstructed declination");
  }
}

EventFileWriter::~EventFileWriter() {
  if (committed_) return;
  file_.abandon();
  if (rank_ == 0) {
    std::error_code ec;
    fs::remove(temporary_, ec);  // best effort: nothing to report to from a destructor
  }
}

void EventFileWriter::write_rows(std::int64_t first_row, std::int64_t rows,
                                 const Producer& produce) {
  if (first_row < 0 || rows < 0 || first_row + rows > total_rows_) {
    throw InternalError(fmt::format("{}: rows [{}, {}) are outside the {} rows of /events", path_,
                                    first_row, first_row + rows, total_rows_));
  }
  const std::int64_t local_rounds = (rows + round_rows - 1) / round_rows;
  const std::int64_t rounds = comm_.max(local_rounds);
  Events buffer;
  bool exhausted = false;
  std::int64_t written = 0;
  const auto produced_wrong = [&](std::int64_t produced) {
    return InternalError(fmt::format("{}: the producer gave at least {} rows, {} were counted",
                                     path_, produced, rows));
  };
  for (std::int64_t round = 0; round < rounds; ++round) {
    const std::int64_t need = std::min(round_rows, rows - written);
    while (static_cast<std::int64_t>(buffer.size()) < need && !exhausted) {
      const Events more = produce();
      exhausted = more.size() == 0;
      append(buffer, more, 0, more.size());
    }
    if (static_cast<std::int64_t>(buffer.size()) < need) {
      throw produced_wrong(written + static_cast<std::int64_t>(buffer.size()));
    }
    const auto n = static_cast<std::size_t>(need);
    const std::int64_t offset = first_row + written;
    file_.write_slab("/events/time", offset, std::span(buffer.time.data(), n));
    file_.write_slab("/events/energy", offset, std::span(buffer.energy.data(), n));
    file_.write_slab("/events/ra", offset, std::span(buffer.ra.data(), n));
    file_.write_slab("/events/dec", offset, std::span(buffer.dec.data(), n));
    drop_front(buffer, n);
    written += need;
  }
  if (!exhausted && buffer.size() == 0) buffer = produce();
  if (buffer.size() > 0) throw produced_wrong(rows + static_cast<std::int64_t>(buffer.size()));
}

void EventFileWriter::commit() {
  file_.close();
  std::string message;
  if (rank_ == 0) {
    std::error_code ec;
    fs::rename(temporary_, path_, ec);
    if (ec)
      message = fmt::format("{}: cannot rename {} to it: {}", path_, temporary_, ec.message());
  }
  comm_.broadcast(message);
  if (!message.empty()) throw IoError(message);  // the destructor removes the temporary file
  committed_ = true;
}

void write_event_file(const std::string& path, const Observation& observation, const Events& local,
                      const Communicator& comm) {
  const auto rows = static_cast<std::int64_t>(local.size());
  const std::int64_t first = comm.exclusive_sum(rows);
  const std::int64_t total = comm.sum(rows);
  EventFileWriter writer(path, observation, total, comm);
  bool given = false;
  writer.write_rows(first, rows, [&] {
    if (given) return Events{};
    given = true;
    return local;
  });
  writer.commit();
}

}  // namespace binflow::science
