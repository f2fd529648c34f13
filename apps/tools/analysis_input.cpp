#include "tools/analysis_input.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "binflow/error.hpp"
#include "science/dl3_response.hpp"
#include "science/gti.hpp"
#include "science/roi.hpp"

namespace binflow::apps {

namespace {

constexpr double seconds_per_day = 86400.0;
// DL3 event readers kept open per rank: a bin overlaps one or two observations, and bins
// come roughly in time order.
constexpr std::size_t open_readers = 4;

// The union of the observations' GTIs: sorted, overlapping or touching intervals merged.
science::Gti gti_union(const std::vector<science::dl3::Observation>& observations) {
  std::vector<std::pair<double, double>> all;
  for (const auto& obs : observations) {
    for (std::size_t i = 0; i < obs.gti.size(); ++i) all.emplace_back(obs.gti.start[i], obs.gti.stop[i]);
  }
  std::sort(all.begin(), all.end());
  science::Gti out;
  for (const auto& [start, stop] : all) {
    if (out.size() > 0 && start <= out.stop.back()) {
      out.stop.back() = std::max(out.stop.back(), stop);
      continue;
    }
    out.start.push_back(start);
    out.stop.push_back(stop);
  }
  return out;
}

// RA_OBJ/DEC_OBJ when every observation has the same; none otherwise.
std::optional<std::array<double, 2>> common_target(const science::dl3::DataSet& data) {
  std::optional<std::array<double, 2>> target;
  for (const auto& obs : data.observations()) {
    if (!obs.target || (target && *target != *obs.target)) return std::nullopt;
    target = obs.target;
  }
  return target;
}

}  // namespace

struct AnalysisInput::EventFile {
  explicit EventFile(const std::string& path)
      : reader(path), response(reader.observation().irf, path) {}
  science::EventFileReader reader;
  science::Response response;
};

struct AnalysisInput::CachedReader {
  std::size_t observation;
  science::dl3::EventReader reader;
};

AnalysisInput::AnalysisInput(const Communicator& comm, const AnalysisParameters& params,
                             const std::function<void(const AnalysisInput&)>& check_more)
    : params_(params) {
  // Rank 0 opens (and keeps) the input first; the others open it once it has passed.
  // Rank 0 also reads the event file's time index (a read of the whole time column through
  // HDF5's sieve, 9 ms for 10 M events) and hands it to the others.
  comm.agree_on_root([&] {
    open();
    if (event_file_) (void)event_file_->reader.time_index_values();
    if (check_more) check_more(*this);
  });
  if (!comm.is_root()) open();
  if (event_file_ && comm.size() > 1) {
    std::vector<double> index;
    if (comm.is_root()) index = event_file_->reader.time_index_values();
    comm.broadcast(index);
    if (!comm.is_root()) event_file_->reader.adopt_time_index(std::move(index));
  }
}

AnalysisInput::AnalysisInput(const AnalysisParameters& params) : params_(params) { open(); }

AnalysisInput::~AnalysisInput() = default;

void AnalysisInput::open() {
  const std::string& inobs = params_.inobs;
  double ra = std::numeric_limits<double>::quiet_NaN();
  double dec = ra;
  if (science::dl3::input_kind(inobs) == science::dl3::InputKind::event_file) {
    if (!params_.obs_ids().empty()) {
      throw UsageError(fmt::format(
          "obs_id: selects observations of a DL3 input, and {} is an HDF5 event file", inobs));
    }
    event_file_ = std::make_unique<const EventFile>(inobs);
    const science::Observation& obs = event_file_->reader.observation();
    gti_ = obs.gti;
    if (gti_.size() == 0) throw UsageError(fmt::format("{}: /gti is empty", inobs));
    mjdref_ = obs.info.mjdref;
    timesys_ = obs.info.timesys;
    ra = obs.info.ra_pnt;
    dec = obs.info.dec_pnt;
  } else {
    data_ = std::make_unique<const science::dl3::DataSet>(
        science::dl3::DataSet::open(inobs, params_.obs_ids()));
    gti_ = gti_union(data_->observations());
    const science::dl3::TimeReference& ref = data_->time_reference();
    mjdref_ = static_cast<double>(ref.mjdref_int) + ref.mjdref_frac;
    timesys_ = ref.timesys;
    if (const auto target = common_target(*data_)) {
      ra = (*target)[0];
      dec = (*target)[1];
    } else if (std::isnan(params_.ra)) {
      throw UsageError(fmt::format(
          "ra, dec: required: the observations of {} name no common target (RA_OBJ, DEC_OBJ)",
          inobs));
    }
  }
  range_ = params_.time_range(gti_, mjdref_, inobs);
  settings_ = params_.fit_settings(ra, dec);
}

double AnalysisInput::mjd(double seconds) const {
  if (data_) return data_->time_reference().mjd(seconds);
  return mjdref_ + seconds / seconds_per_day;
}

science::BinFitter AnalysisInput::fitter(const science::FitSettings& settings) const {
  if (!data_) return science::BinFitter(event_file_->response, settings);
  std::vector<science::dl3::ObservationResponse> responses;
  for (const science::dl3::Observation& obs : data_->observations()) {
    responses.emplace_back(obs, settings.ra, settings.dec);
  }
  return science::BinFitter(responses, settings);
}

science::dl3::EventReader& AnalysisInput::dl3_reader(std::size_t observation) const {
  const auto it = std::find_if(readers_.begin(), readers_.end(),
                               [&](const auto& r) { return r->observation == observation; });
  if (it != readers_.end()) {
    std::rotate(it, it + 1, readers_.end());  // most recently used last
    return readers_.back()->reader;
  }
  if (readers_.size() >= open_readers) readers_.erase(readers_.begin());
  readers_.push_back(std::make_unique<CachedReader>(
      CachedReader{observation, science::dl3::EventReader(data_->observations()[observation])}));
  return readers_.back()->reader;
}

science::RoiEvents AnalysisInput::read_pieces(
    const science::Gti& gti, double deadtime_fraction, double t0, double t1,
    const science::FitSettings& settings, const MemoryLimit& memory,
    const std::function<bool(double)>& keep, double window,
    const std::function<science::EventsView(double, double, const science::BeforeRead&)>& read)
    const {
  science::RoiEvents out;
  // Windows start at each GTI start (clipped to [t0, t1)), so they do not depend on who reads.
  for (std::size_t i = 0; i < gti.size(); ++i) {
    const double lo = std::max(t0, gti.start[i]);
    const double hi = std::min(t1, gti.stop[i]);
    for (double a = lo; a < hi;) {
      const double b = hi - a > window ? a + window : hi;
      // The piece's rows, then at most as many selected (a bound: the selection is not
      // known before the read).
      constexpr auto row_bytes =
          static_cast<double>(science::Events::row_bytes + science::RoiEvents::row_bytes);
      const science::BeforeRead check = [&](std::int64_t rows) {
        memory.check(static_cast<double>(rows) * row_bytes, [&] {
          return fmt::format("reading {} events of [{:.10g}, {:.10g}) s", rows, a, b);
        });
      };
      const science::RoiEvents part =
          science::select_roi(read(a, b, check), gti, a, b, deadtime_fraction, settings, keep);
      out.energy.insert(out.energy.end(), part.energy.begin(), part.energy.end());
      out.theta.insert(out.theta.end(), part.theta.begin(), part.theta.end());
      a = b;
    }
  }
  out.livetime = science::livetime(gti, t0, t1, deadtime_fraction);
  return out;
}

science::RoiEvents AnalysisInput::read_roi(double t0, double t1,
                                           const science::FitSettings& settings,
                                           const MemoryLimit& memory,
                                           const std::function<bool(double)>& keep,
                                           double window) const {
  if (!data_) {
    const science::Observation& obs = event_file_->reader.observation();
    const science::EventFileReader& reader = event_file_->reader;
    return read_pieces(obs.gti, obs.info.deadtime_fraction, t0, t1, settings, memory, keep, window,
                       [&](double a, double b, const science::BeforeRead& check) {
                         // One set per thread: bins may read at once (concurrent_bins).
                         thread_local science::EventFileReader::Buffers buffers;
                         return reader.view_time_range(a, b, check, buffers);
                       });
  }
  science::RoiEvents out;
  for (const std::size_t o : data_->overlapping(t0, t1)) {
    const science::dl3::Observation& obs = data_->observations()[o];
    science::Events piece;  // the DL3 reader returns its events; the view points here
    const science::RoiEvents part =
        read_pieces(obs.gti, obs.deadtime_fraction(), t0, t1, settings, memory, keep, window,
                    [&](double a, double b, const science::BeforeRead& check) {
                      piece = dl3_reader(o).read_time_range(a, b, check);
                      return science::view_of(piece);
                    });
    out.append_part(o, part);
  }
  return out;
}

double AnalysisInput::livetime(double t0, double t1) const {
  if (!data_) {
    const science::Observation& obs = event_file_->reader.observation();
    return science::livetime(obs.gti, t0, t1, obs.info.deadtime_fraction);
  }
  double total = 0.0;
  for (const science::dl3::Observation& obs : data_->observations()) {
    total += science::livetime(obs.gti, t0, t1, obs.deadtime_fraction());
  }
  return total;
}

std::int64_t AnalysisInput::n_events() const {
  return data_ ? data_->n_events() : event_file_->reader.size();
}

void AnalysisInput::log_summary(spdlog::logger& log) const {
  const std::string selection =
      fmt::format("selection {} to {} s (MJD {:.6f} to {:.6f} {})", t0(), t1(), mjd(t0()),
                  mjd(t1()), timesys_);
  if (!data_) {
    log.info("{}: {} events, {} GTIs; {}", params_.inobs, n_events(), gti_.size(), selection);
    return;
  }
  std::vector<std::int64_t> ids;
  for (const auto& obs : data_->observations()) ids.push_back(obs.obs_id);
  log.info("{}: {}, {} observations (OBS_ID {}), {} events; {}", params_.inobs,
           science::dl3::to_string(data_->kind()), ids.size(), fmt::join(ids, " "), n_events(),
           selection);
  for (const std::string& note : data_->notes()) log.info("{}", note);
}

}  // namespace binflow::apps
