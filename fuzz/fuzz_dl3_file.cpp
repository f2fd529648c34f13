// The DL3 reader (DataSet::open, EventReader, ObservationResponse in apps/science/dl3*.cpp) on
// small GADF files that this target writes with the fits wrapper. As for the HDF5 reader, the
// input is a recipe read with FuzzedDataProvider, not the file's bytes (that would fuzz
// cfitsio's header parser): every keyword, column and unit of tests/helpers/gadf_writer.hpp's
// Spec is kept, left out, or given another value (NaN, infinities, extremes, disorder, other
// units and lengths). The reader must read every such file or refuse it with a UsageError.
#include <array>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include <fuzzer/FuzzedDataProvider.h>

#include "../tests/helpers/gadf_writer.hpp"
#include "fuzz_common.hpp"
#include "science/dl3.hpp"
#include "science/dl3_response.hpp"

namespace {

namespace dl3 = binflow::science::dl3;
namespace gadf = binflow::testing_support::gadf;

constexpr std::string_view target = "fuzz_dl3_file";
constexpr double inf = std::numeric_limits<double>::infinity();

constexpr std::array<double, 16> specials = {
    0.0, -0.0, 1.0, -1.0, 1e-310, 1e308, -1e308, inf, -inf,
    std::numeric_limits<double>::quiet_NaN(), 90.0, -90.0, 90.5, 360.0, 51910.0, 1e20};

double interesting(FuzzedDataProvider& in, double usual) {
  return binflow::fuzz::interesting(in, usual, specials);
}

void mutate(FuzzedDataProvider& in, std::vector<double>& column) {
  switch (in.ConsumeIntegralInRange<int>(0, 3)) {
    case 0:
      return;
    case 1:  // another length
      column.resize(in.ConsumeIntegralInRange<std::size_t>(0, 12), column.empty() ? 1.0 : column[0]);
      return;
    default:
      for (double& v : column) v = interesting(in, v);
  }
}

std::string unit(FuzzedDataProvider& in, std::string usual) {
  static constexpr std::array<std::string_view, 12> units = {
      "", "s", "d", "TeV", "GeV", "MeV", "deg", "rad", "m2", "cm2", "s-1 MeV-1 sr-1", "erg"};
  switch (in.ConsumeIntegralInRange<int>(0, 2)) {
    case 0:
      return usual;
    case 1:
      return std::string(units[in.ConsumeIntegralInRange<std::size_t>(0, units.size() - 1)]);
    default:
      return in.ConsumeRandomLengthString(16);
  }
}

gadf::Spec recipe(FuzzedDataProvider& in) {
  gadf::Spec s;
  if (in.ConsumeBool()) s.obs_id = in.ConsumeBool() ? std::nullopt
                                                    : std::optional(in.ConsumeIntegral<std::int64_t>());
  if (in.ConsumeBool()) s.mjdrefi = in.ConsumeIntegral<std::int64_t>();
  s.mjdreff = interesting(in, s.mjdreff);
  if (in.ConsumeBool()) s.timesys = in.ConsumeBool() ? "UTC" : in.ConsumeRandomLengthString(8);
  if (in.ConsumeBool()) s.timeref = in.ConsumeRandomLengthString(8);
  if (in.ConsumeBool()) s.ra_pnt = std::nullopt;
  else if (s.ra_pnt) s.ra_pnt = interesting(in, *s.ra_pnt);
  s.dec_pnt = interesting(in, s.dec_pnt);
  s.ontime = interesting(in, s.ontime);
  if (in.ConsumeBool()) s.livetime = std::nullopt;
  else if (s.livetime) s.livetime = interesting(in, *s.livetime);
  if (in.ConsumeBool()) s.deadc = interesting(in, 0.95);
  mutate(in, s.time);
  mutate(in, s.energy);
  mutate(in, s.ra);
  mutate(in, s.dec);
  s.time_unit = unit(in, s.time_unit);
  s.energy_unit = unit(in, s.energy_unit);
  s.angle_unit = unit(in, s.angle_unit);
  mutate(in, s.gti_start);
  mutate(in, s.gti_stop);
  s.with_irf = in.ConsumeIntegralInRange<int>(0, 7) != 0;
  // The writer's IRF tables take 3 effective-area energy bins.
  if (in.ConsumeBool()) {
    for (double& e : s.aeff_energy) e = interesting(in, e);
  }
  s.aeff_energy_unit = unit(in, s.aeff_energy_unit);
  s.aeff_unit = unit(in, s.aeff_unit);
  s.aeff_scale = interesting(in, s.aeff_scale);
  if (in.ConsumeBool()) {
    s.aeff_tdim = std::vector<std::int64_t>{in.ConsumeIntegralInRange<std::int64_t>(-2, 6),
                                            in.ConsumeIntegralInRange<std::int64_t>(-2, 6)};
  }
  s.psf_table = in.ConsumeBool();
  static constexpr std::array<const char*, 4> bkg = {"BKG_2D", "BKG_3D", "", "BKG_2D"};
  s.bkg_class = bkg[in.ConsumeIntegralInRange<std::size_t>(0, bkg.size() - 1)];
  if (in.ConsumeBool()) s.fovalign = in.ConsumeBool() ? "ALTAZ" : in.ConsumeRandomLengthString(8);
  s.bkg_unit = unit(in, s.bkg_unit);
  s.edisp = in.ConsumeBool();
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  const gadf::Spec spec = recipe(in);
  const double t0 = interesting(in, 15.0);
  const double t1 = interesting(in, 45.0);
  const std::string path = binflow::fuzz::scratch_path("run.fits");
  std::error_code ec;
  std::filesystem::remove(path, ec);
  binflow::fuzz::expect_usage_errors_only(target, [&] {
    // A spec the writer itself cannot write (cfitsio refuses, say, a column of 0 cells) is
    // no file to read: skip it.
    try {
      gadf::write_observation(path, spec);
    } catch (const binflow::Error&) {
      return;
    }
    const dl3::DataSet set = dl3::DataSet::open(path);
    for (const dl3::Observation& obs : set.observations()) {
      dl3::EventReader reader(obs);
      const binflow::science::Events all = reader.read_all();
      const binflow::science::Events some = reader.read_time_range(t0, t1);
      binflow::fuzz::require(some.size() <= all.size(), target, "a range holds more than all");
      const dl3::ObservationResponse response(obs, 83.6331, 22.0145);
      (void)response.aeff(1.0);
      (void)response.psf_density(1.0, 0.05);
    }
  });
  std::filesystem::remove(path, ec);
  return 0;
}
