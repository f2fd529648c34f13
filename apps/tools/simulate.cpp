#include "tools/simulate.hpp"

#include <mpi.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "binflow/error.hpp"
#include "binflow/ordered_log.hpp"
#include "science/event_file.hpp"
#include "science/gti.hpp"

namespace binflow::apps {

namespace {

// Standard parameters that say how, not what, to compute: left out of the file's provenance
// so that the file is the same bits for any launch geometry.
bool launch_only(const std::string& name) {
  static const std::vector<std::string> names = {"nthreads", "oversubscribe", "chatter",
                                                 "logfile",  "outfile",       "clobber"};
  return std::find(names.begin(), names.end(), name) != names.end();
}

double parse_time(const std::string& text, double middle) {
  if (text == "middle") return middle;
  double value = 0.0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || !std::isfinite(value)) {
    throw UsageError(fmt::format("t_peak: '{}' is neither a time in MET s nor 'middle'", text));
  }
  return value;
}

}  // namespace

void SimulateTool::reset() {
  duration_ = 14400.0;
  tstart_ = 0.0;
  n0_ = 3.5e-11;
  gamma_ = 2.5;
  beta_ = 1.0;
  ra_ = 83.6331;
  dec_ = 22.0145;
  theta_sim_ = 0.3;
  profile_ = "constant";
  amplitude_ = 3.0;
  t_peak_ = "middle";
  width_ = 600.0;
  profile_file_.clear();
  pulsed_fraction_ = 0.5;
  peak_phase_ = 0.3;
  peak_width_ = 0.05;
  const science::Ephemeris ephemeris;
  t_ref_ = ephemeris.t_ref;
  f0_ = ephemeris.f0;
  f1_ = ephemeris.f1;
  f2_ = ephemeris.f2;
  slice_ = 60.0;
  inirf_.clear();
  observation_.reset();
  simulator_.reset();
}

void SimulateTool::declare(ParameterSet& params) {
  params.add("duration", duration_,
             "length of the embedded observation, s of wall-clock time from tstart: runs of "
             "1800 s with 120 s gaps, the last one cut at the end (ignored with inirf)",
             Range<double>{0.0, 1e10});
  params.add("tstart", tstart_, "start of the embedded observation, MET s (ignored with inirf)");
  params.add("N0", n0_, "source flux at 1 TeV, ph cm^-2 s^-1 TeV^-1", Range<double>{0.0, {}});
  params.add("gamma", gamma_, "source power-law index", Range<double>{-10.0, 10.0});
  params.add("beta", beta_, "background normalisation (1 = the response's bkg_rate)",
             Range<double>{0.0, {}});
  params.add("ra", ra_,
             "source right ascension, deg (also the pointing of the embedded "
             "observation)",
             Range<double>{-360.0, 360.0});
  params.add("dec", dec_, "source declination, deg (also the pointing of the embedded observation)",
             Range<double>{-90.0, 90.0});
  params.add("theta_sim", theta_sim_,
             "radius of the background cap around the source, deg (1.5 x the analysis "
             "theta_max of 0.2)",
             Range<double>{0.0, 90.0});
  params.add_choice(
      "profile", profile_, {"constant", "flare", "table", "pulsar"},
      "source light curve f(t): constant f = 1; flare f = 1 + amplitude "
      "exp(-(t - t_peak)^2 / (2 width^2)); table: piecewise linear from profile_file; pulsar "
      "f = (1 - pulsed_fraction) + pulsed_fraction g(phase), g a Gaussian peak in phase "
      "with mean 1 over a turn");
  params.add("amplitude", amplitude_, "flare amplitude (profile=flare)", Range<double>{0.0, {}});
  params.add("t_peak", t_peak_,
             "flare peak, MET s, or 'middle' = halfway between the first GTI start and the "
             "last GTI stop (profile=flare)");
  params.add("width", width_, "flare Gaussian width sigma, s, > 0 (profile=flare)");
  params.add("profile_file", profile_file_,
             "text file of 'time value' lines (MET s, f >= 0, times increasing; '#' comments) for "
             "profile=table; f is linear between points and keeps the end values outside them");
  params.add("pulsed_fraction", pulsed_fraction_,
             "fraction of the source flux in the pulse (profile=pulsar)", Range<double>{0.0, 1.0});
  params.add("peak_phase", peak_phase_, "phase of the pulse peak (profile=pulsar)",
             Range<double>{0.0, 1.0});
  params.add("peak_width", peak_width_,
             "Gaussian width sigma of the pulse, in phase, (0, 0.5] (profile=pulsar)",
             Range<double>{0.0, 0.5});
  params.add("t_ref", t_ref_, "ephemeris reference time, MET s (profile=pulsar)");
  params.add("f0", f0_, "spin frequency at t_ref, Hz, > 0 (profile=pulsar)");
  params.add("f1", f1_, "first derivative of the frequency, Hz/s (profile=pulsar)");
  params.add("f2", f2_, "second derivative of the frequency, Hz/s^2 (profile=pulsar)");
  params.add("slice", slice_,
             "length of the time slices, s: slice k draws from the random stream (seed, k)",
             Range<double>{1e-3, 1e9});
  params.add("inirf", inirf_,
             "event file whose /irf, /gti, deadtime_fraction, mjdref, object and pointing are "
             "reused (its events are not); then duration and tstart are ignored and the GTIs set "
             "the time range. Empty = the embedded instrument and observation");
}

void SimulateTool::capture_events(science::Events* out, science::Observation* observation) {
  capture_ = out;
  capture_observation_ = observation;
}

void SimulateTool::validate() {
  if (standard().outfile.empty() && capture_ == nullptr) {
    throw UsageError("outfile: simulate writes an event file; give outfile=NAME.h5");
  }
  if (!(width_ > 0.0)) throw UsageError(fmt::format("width: {} s is not > 0", width_));
  if (!(slice_ > 0.0)) throw UsageError(fmt::format("slice: {} s is not > 0", slice_));
  if (profile_ == "table" && profile_file_.empty()) {
    throw UsageError("profile_file: profile=table needs a profile_file");
  }
  if (profile_ != "table" && !profile_file_.empty()) {
    throw UsageError(
        fmt::format("profile_file: only used with profile=table (profile is {})", profile_));
  }
  if (inirf_.empty()) {
    observation_ = science::default_observation(duration_, tstart_);
    observation_->info.ra_pnt = ra_;
    observation_->info.dec_pnt = dec_;
  } else {
    observation_ = science::EventFileReader(inirf_).observation();
  }
  const science::Gti& gti = observation_->gti;
  const double middle = gti.size() == 0 ? tstart_ : 0.5 * (gti.start.front() + gti.stop.back());
  science::TimeProfile profile = science::TimeProfile::constant();
  if (profile_ == "flare") {
    profile = science::TimeProfile::flare(amplitude_, parse_time(t_peak_, middle), width_);
  } else if (profile_ == "table") {
    profile = science::TimeProfile::from_file(profile_file_);
  } else if (profile_ == "pulsar") {
    profile = science::TimeProfile::pulsar(pulsed_fraction_, peak_phase_, peak_width_,
                                           science::Ephemeris{t_ref_, f0_, f1_, f2_});
  }
  const std::string irf_source = inirf_.empty() ? std::string("embedded instrument") : inirf_;
  const science::Response response(observation_->irf, irf_source);
  const science::SourceModel model{ra_, dec_, n0_, gamma_, beta_, theta_sim_};
  simulator_.emplace(*observation_, response, model, std::move(profile), slice_);
}

ToolOutput SimulateTool::execute(RunContext& ctx) {
  const double start = MPI_Wtime();
  const science::Observation& obs = *observation_;
  const double ontime = science::ontime(obs.gti, -INFINITY, INFINITY);
  ctx.log().info(
      "observation: {} GTIs, {:.1f} s ontime, deadtime {}, {}", obs.gti.size(), ontime,
      obs.info.deadtime_fraction,
      inirf_.empty() ? std::string("embedded instrument") : "response and GTIs of " + inirf_);
  ctx.log().info(
      "source at ({}, {}): N0 {:g} at 1 TeV, gamma {}, profile {}; background beta {} "
      "within {} deg; energies {:g}-{:g} TeV",
      ra_, dec_, n0_, gamma_, profile_, beta_, theta_sim_, obs.irf.energy.front(),
      obs.irf.energy.back());
  if (capture_ != nullptr) {
    science::Events* out = std::exchange(capture_, nullptr);
    science::Observation* observation = std::exchange(capture_observation_, nullptr);
    *out = science::simulate_events(*simulator_, ctx.settings().seed, ctx.budget().threads());
    if (observation != nullptr) *observation = obs;
    const auto [expected_source, expected_background] = simulator_->expected();
    const double wall = MPI_Wtime() - start;
    ctx.log().info("{} events simulated in memory ({:.1f} source and {:.1f} background expected)",
                   out->size(), expected_source, expected_background);
    ctx.log().info("{}simulated in {:.3f} s with {} threads", run_marker, wall,
                   ctx.budget().threads());
    ToolOutput result;
    result.has_results = false;
    result.wall = wall;
    return result;
  }
  std::vector<std::pair<std::string, std::string>> provenance;
  for (auto& [name, value] : parameter_values()) {
    if (!launch_only(name)) provenance.emplace_back(name, value);
  }
  const std::string& outfile = standard().outfile;
  const science::SimulationSummary s =
      science::simulate_to_file(outfile, obs, *simulator_, ctx.settings().seed,
                                ctx.budget().threads(), ctx.runtime().comm.get(), provenance);
  const double wall = MPI_Wtime() - start;
  ctx.log().info(
      "{} slices of {} s: source {} events drawn ({:.1f} expected), background {} drawn "
      "({:.1f} expected)",
      s.slices, slice_, s.source, s.expected_source, s.background, s.expected_background);
  ctx.log().info("wrote {} events to {}", s.events, outfile);
  ctx.log().info(
      "{}simulated and wrote in {:.3f} s on {} ranks x {} threads (rank 0: counts "
      "{:.3f} s, events {:.3f} s, file {:.3f} s)",
      run_marker, wall, ctx.runtime().size(), ctx.budget().threads(), s.count_seconds,
      s.generate_seconds, s.write_seconds);
  ToolOutput out;
  out.has_results = false;
  out.wall = wall;
  return out;
}

}  // namespace binflow::apps
