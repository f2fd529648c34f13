// Test helper of tests/e2e/test_dl3_irf.py: opens a DL3 input with science/dl3.hpp and prints,
// as JSON on stdout, each observation's header facts, GTIs, events and its response at a
// source position, evaluated at the energies and angles given, so that the test compares them
// with Gammapy's evaluation of the same files.
//   dl3_irf_eval INOBS RA DEC E1,E2,... THETA1,THETA2,...
// psf_density and psf_containment are [energy][theta]. Bad input: the one-line message on
// stderr, exit status 2.
#include <cstdio>
#include <exception>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "binflow/error.hpp"
#include "science/dl3.hpp"
#include "science/dl3_response.hpp"

namespace {

namespace dl3 = binflow::science::dl3;

std::vector<double> parse_list(const std::string& text) {
  std::vector<double> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) out.push_back(std::stod(item));
  return out;
}

std::string json(const std::vector<double>& v) {
  return fmt::format("[{:.17g}]", fmt::join(v, ", "));
}

std::string json(const std::string& s) { return fmt::format("\"{}\"", s); }

int run(int argc, char** argv) {
  if (argc != 6) {
    std::fputs("usage: dl3_irf_eval INOBS RA DEC E1,E2,... THETA1,THETA2,...\n", stderr);
    return 2;
  }
  const std::string inobs = argv[1];
  const double ra = std::stod(argv[2]);
  const double dec = std::stod(argv[3]);
  const std::vector<double> energies = parse_list(argv[4]);
  const std::vector<double> thetas = parse_list(argv[5]);
  const dl3::DataSet set = dl3::DataSet::open(inobs);
  const dl3::TimeReference& time = set.time_reference();
  std::vector<std::string> observations;
  for (const dl3::Observation& obs : set.observations()) {
    const dl3::ObservationResponse response(obs, ra, dec);
    std::vector<double> aeff;
    std::vector<double> bkg;
    std::vector<std::string> density;
    std::vector<std::string> containment;
    for (const double e : energies) {
      aeff.push_back(response.aeff(e));
      bkg.push_back(response.bkg_rate(e));
      std::vector<double> d;
      std::vector<double> c;
      for (const double t : thetas) {
        d.push_back(response.psf_density(e, t));
        c.push_back(response.psf_containment(e, t));
      }
      density.push_back(json(d));
      containment.push_back(json(c));
    }
    dl3::EventReader reader(obs);
    const binflow::science::Events events = reader.read_all();
    observations.push_back(fmt::format(
        "{{\"obs_id\": {}, \"events_hdu\": {}, \"psf_class\": {}, \"bkg_class\": {}, "
        "\"ra_pnt\": {:.17g}, \"dec_pnt\": {:.17g}, \"ontime\": {:.17g}, \"livetime\": {:.17g}, "
        "\"time_shift\": {:.17g}, \"gti_start\": {}, \"gti_stop\": {}, \"has_edisp\": {}, "
        "\"offset\": {:.17g}, \"fov_lon\": {:.17g}, \"fov_lat\": {:.17g}, "
        "\"aeff\": {}, \"bkg_rate\": {}, \"psf_density\": [{}], \"psf_containment\": [{}], "
        "\"time\": {}, \"energy\": {}, \"ra\": {}, \"dec\": {}}}",
        obs.obs_id, json(obs.events.text()), json(std::string(to_string(obs.psf_class))),
        json(std::string(to_string(obs.bkg_class))), obs.ra_pnt, obs.dec_pnt, obs.ontime,
        obs.livetime, obs.time_shift, json(obs.gti.start), json(obs.gti.stop),
        obs.edisp ? "true" : "false", response.offset(), response.fov_lon(), response.fov_lat(),
        json(aeff), json(bkg), fmt::join(density, ", "), fmt::join(containment, ", "),
        json(events.time), json(events.energy), json(events.ra), json(events.dec)));
  }
  std::vector<std::string> notes;
  for (const std::string& n : set.notes()) notes.push_back(json(n));
  fmt::print(
      "{{\"kind\": {}, \"mjdref_int\": {}, \"mjdref_frac\": {:.17g}, \"timesys\": {}, "
      "\"notes\": [{}], \"observations\": [{}]}}\n",
      json(std::string(to_string(set.kind()))), time.mjdref_int, time.mjdref_frac,
      json(time.timesys), fmt::join(notes, ", "), fmt::join(observations, ",\n"));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const binflow::UsageError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 4;
  }
}
