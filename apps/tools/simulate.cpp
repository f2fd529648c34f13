#include "tools/simulate.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "binflow/error.hpp"
#include "binflow/ordered_log.hpp"
#include "science/event_file.hpp"
#include "science/gti.hpp"
#include "science/time_spec.hpp"
#include "tools/analysis.hpp"

namespace binflow::apps {

namespace {

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// t_peak: 'middle', or a time in any form of the time parameters (MET s, MJD, ISO date).
double peak_time(const std::string& text, double middle, double mjdref) {
  if (text == "middle") return middle;
  const science::TimeSpec time = science::TimeSpec::parse(text, "t_peak");
  if (!time.given()) throw UsageError("t_peak: give a time or 'middle'");
  return time.seconds(mjdref);
}

}  // namespace

void SimulateTool::declare(ParameterSet& params) {
  params.add("duration", p_.duration,
             "length of the embedded observation, s of wall-clock time from tstart: runs of "
             "1800 s with 120 s gaps, the last one cut at the end (ignored with inirf)",
             Range<double>{0.0, 1e10});
  params.add("tstart", p_.tstart, "start of the embedded observation, MET s (ignored with inirf)");
  params.add("N0", p_.n0, "source flux at 1 TeV, ph cm^-2 s^-1 TeV^-1", Range<double>{0.0, {}});
  params.add("gamma", p_.gamma, "source power-law index", Range<double>{-10.0, 10.0});
  params.add("beta", p_.beta, "background normalisation (1 = the response's bkg_rate)",
             Range<double>{0.0, {}});
  declare_sky_position(params, p_.ra, p_.dec, "(also the pointing of the embedded observation)");
  params.add("theta_sim", p_.theta_sim,
             "radius of the background cap around the source, deg (1.5 x the analysis "
             "theta_max of 0.2)",
             Range<double>{0.0, 90.0});
  params.add_choice(
      "profile", p_.profile, {"constant", "flare", "table", "pulsar"},
      "source light curve f(t): constant f = 1; flare f = 1 + amplitude "
      "exp(-(t - t_peak)^2 / (2 width^2)); table: piecewise linear from profile_file; pulsar "
      "f = (1 - pulsed_fraction) + pulsed_fraction g(phase), g a Gaussian peak in phase "
      "with mean 1 over a turn");
  params.add("amplitude", p_.amplitude, "flare amplitude (profile=flare)", Range<double>{0.0, {}});
  params.add("t_peak", p_.t_peak,
             "flare peak: MET s, 'MJD x', an ISO 8601 date, or 'middle' = halfway between the "
             "first GTI start and the "
             "last GTI stop (profile=flare)");
  params.add("width", p_.width, "flare Gaussian width sigma, s, > 0 (profile=flare)");
  params
      .add("profile_file", p_.profile_file,
           "text file of 'time value' lines (MET s, f >= 0, times increasing; '#' comments) for "
           "profile=table; f is linear between points and keeps the end values outside them")
      .input_file();
  params.add("pulsed_fraction", p_.pulsed_fraction,
             "fraction of the source flux in the pulse (profile=pulsar)", Range<double>{0.0, 1.0});
  params.add("peak_phase", p_.peak_phase, "phase of the pulse peak (profile=pulsar)",
             Range<double>{0.0, 1.0});
  params.add("peak_width", p_.peak_width,
             "Gaussian width sigma of the pulse, in phase, (0, 0.5] (profile=pulsar)",
             Range<double>{0.0, 0.5});
  params.add("t_ref", p_.t_ref, "ephemeris reference time, MET s (profile=pulsar)");
  params.add("f0", p_.f0, "spin frequency at t_ref, Hz, > 0 (profile=pulsar)");
  params.add("f1", p_.f1, "first derivative of the frequency, Hz/s (profile=pulsar)");
  params.add("f2", p_.f2, "second derivative of the frequency, Hz/s^2 (profile=pulsar)");
  params.add("slice", p_.slice,
             "length of the time slices, s: slice k draws from the random stream (seed, k)",
             Range<double>{1e-3, 1e9});
  params
      .add("inirf", p_.inirf,
           "event file whose /irf, /gti, deadtime_fraction, mjdref, object and pointing are "
           "reused (its events are not); then duration and tstart are ignored and the GTIs set "
           "the time range. Empty = the embedded instrument and observation")
      .input_file();
}

void SimulateTool::apply(Request request) {
  p_ = std::move(request);
  in_memory_ = true;
}

SimulateTool::Result SimulateTool::result_of(const ToolOutput& /*out*/) {
  if (!captured_) throw InternalError("simulate: no events simulated in memory");
  Result result = std::move(*captured_);
  captured_.reset();
  return result;
}

void SimulateTool::validate() {
  if (standard().outfile.empty() && !in_memory_) {
    throw UsageError("outfile: simulate writes an event file; give outfile=NAME.h5");
  }
  if (!(p_.width > 0.0)) throw UsageError(fmt::format("width: {} s is not > 0", p_.width));
  if (!(p_.slice > 0.0)) throw UsageError(fmt::format("slice: {} s is not > 0", p_.slice));
  if (p_.profile == "table" && p_.profile_file.empty()) {
    throw UsageError("profile_file: profile=table needs a profile_file");
  }
  if (p_.profile != "table" && !p_.profile_file.empty()) {
    throw UsageError(
        fmt::format("profile_file: only used with profile=table (profile is {})", p_.profile));
  }
  if (p_.inirf.empty()) {
    observation_ = science::default_observation(p_.duration, p_.tstart);
    observation_.info.ra_pnt = p_.ra;
    observation_.info.dec_pnt = p_.dec;
  } else {
    observation_ = science::EventFileReader(p_.inirf).observation();
  }
  const science::Gti& gti = observation_.gti;
  const double middle = gti.size() == 0 ? p_.tstart : 0.5 * (gti.start.front() + gti.stop.back());
  science::TimeProfile profile = science::TimeProfile::constant();
  if (p_.profile == "flare") {
    profile = science::TimeProfile::flare(
        p_.amplitude, peak_time(p_.t_peak, middle, observation_.info.mjdref), p_.width);
  } else if (p_.profile == "table") {
    profile = science::TimeProfile::from_file(p_.profile_file);
  } else if (p_.profile == "pulsar") {
    profile = science::TimeProfile::pulsar(p_.pulsed_fraction, p_.peak_phase, p_.peak_width,
                                           science::Ephemeris{p_.t_ref, p_.f0, p_.f1, p_.f2});
  }
  const std::string irf_source = p_.inirf.empty() ? std::string("embedded instrument") : p_.inirf;
  const science::Response response(observation_.irf, irf_source);
  const science::SourceModel model{p_.ra, p_.dec, p_.n0, p_.gamma, p_.beta, p_.theta_sim};
  simulator_ = std::make_unique<science::Simulator>(observation_, response, model,
                                                    std::move(profile), p_.slice);
}

ToolOutput SimulateTool::execute(RunContext& ctx) {
  const double start = wall_seconds();
  if (!simulator_) throw InternalError("simulate: execute() before validate()");
  const science::Observation& obs = observation_;
  const science::Simulator& simulator = *simulator_;
  const double ontime = science::ontime(obs.gti, -INFINITY, INFINITY);
  ctx.log().info(
      "observation: {} GTIs, {:.1f} s ontime, deadtime {}, {}", obs.gti.size(), ontime,
      obs.info.deadtime_fraction,
      p_.inirf.empty() ? std::string("embedded instrument") : "response and GTIs of " + p_.inirf);
  ctx.log().info(
      "source at ({}, {}): N0 {:g} at 1 TeV, gamma {}, profile {}; background beta {} "
      "within {} deg; energies {:g}-{:g} TeV",
      p_.ra, p_.dec, p_.n0, p_.gamma, p_.profile, p_.beta, p_.theta_sim, obs.irf.energy.front(),
      obs.irf.energy.back());
  if (std::exchange(in_memory_, false)) {
    // The slices' events and their concatenation are held at once.
    const MemoryLimit& memory = ctx.settings().memory_limit;
    const science::BeforeRead check = [&memory](std::int64_t events) {
      memory.check(2.0 * static_cast<double>(events) * science::Events::row_bytes,
                   [events] { return fmt::format("simulating {} events", events); });
    };
    const std::optional<science::RoiFilter> keep = std::exchange(p_.keep, std::nullopt);
    science::SimulatedEvents simulated = science::simulate_events(
        simulator, ctx.settings().seed, ctx.budget().threads(), check, keep);
    Result result{std::move(simulated.events), obs, simulated.drawn};
    const auto [expected_source, expected_background] = simulator.expected();
    const double wall = wall_seconds() - start;
    ctx.log().info("{} events simulated in memory ({:.1f} source and {:.1f} background expected)",
                   result.drawn, expected_source, expected_background);
    if (keep) {
      ctx.log().info(
          "kept {} of them, those a fit within {} deg of ({}, {}) at {}-{} TeV can select (the "
          "others skipped after their draws)",
          result.events.size(), keep->theta_max, keep->ra, keep->dec, keep->emin, keep->emax);
    }
    ctx.log().info("{}simulated in {:.3f} s with {} threads", run_marker, wall,
                   ctx.budget().threads());
    captured_ = std::move(result);
    ToolOutput out;
    out.has_results = false;
    out.stats.wall = wall;
    return out;
  }
  // Only what changes the events: the file is the same bits for any launch geometry.
  const auto provenance = parameter_values(ParameterSet::Which::results_only);
  const std::string& outfile = standard().outfile;
  const science::SimulationSummary s =
      science::simulate_to_file(outfile, obs, simulator, ctx.settings().seed,
                                ctx.budget().threads(), ctx.runtime().comm, provenance);
  const double wall = wall_seconds() - start;
  ctx.log().info(
      "{} slices of {} s: source {} events drawn ({:.1f} expected), background {} drawn "
      "({:.1f} expected)",
      s.slices, p_.slice, s.source, s.expected_source, s.background, s.expected_background);
  ctx.log().info("wrote {} events to {}", s.events, outfile);
  ctx.log().info(
      "{}simulated and wrote in {:.3f} s on {} ranks x {} threads (rank 0: counts "
      "{:.3f} s, events {:.3f} s, file {:.3f} s)",
      run_marker, wall, ctx.runtime().size(), ctx.budget().threads(), s.count_seconds,
      s.generate_seconds, s.write_seconds);
  ToolOutput out;
  out.has_results = false;
  out.stats.wall = wall;
  return out;
}

}  // namespace binflow::apps
