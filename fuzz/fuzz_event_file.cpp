// The HDF5 event-file reader (EventFileReader in apps/science/event_file.cpp) on small files
// that this target writes with the HDF5 C API. The input is not the file's bytes (that would
// fuzz HDF5 itself) but a recipe read with FuzzedDataProvider: for every root attribute and
// every dataset of the format (SCIENCE.md section 1), keep the valid default, leave it out, or
// write it with another type, shape, length or values (NaN, infinities, extremes, disorder).
// The reader must open and read every such file or refuse it with a UsageError.
#include <hdf5.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include <fuzzer/FuzzedDataProvider.h>

#include "fuzz_common.hpp"
#include "science/event_file.hpp"

namespace {

constexpr std::string_view target = "fuzz_event_file";
constexpr double inf = std::numeric_limits<double>::infinity();

// A failure of the harness's own HDF5 writes is not a finding about the reader.
hid_t checked(hid_t id, const char* call) {
  if (id < 0) {
    std::fprintf(stderr, "fuzz_event_file: harness call %s failed\n", call);
    std::abort();
  }
  return id;
}

constexpr std::array<double, 22> specials = {
    0.0, -0.0, 1.0, -1.0, 0.5, 1e-310, 1e308, -1e308, inf, -inf,
    std::numeric_limits<double>::quiet_NaN(), 90.0, -90.0, 90.5, 0.999999, 51544.5,
    1800.0, 3600.0, 1e20, -1e20, 7e15, 2.0};

double interesting(FuzzedDataProvider& in, double usual) {
  return binflow::fuzz::interesting(in, usual, specials);
}

hid_t scalar_space() { return checked(H5Screate(H5S_SCALAR), "H5Screate"); }
hid_t line_space(hsize_t n) { return checked(H5Screate_simple(1, &n, nullptr), "H5Screate_simple"); }

hid_t string_type(std::size_t length, bool variable) {
  const hid_t type = checked(H5Tcopy(H5T_C_S1), "H5Tcopy");
  checked(H5Tset_size(type, variable ? H5T_VARIABLE : std::max<std::size_t>(length, 1)),
          "H5Tset_size");
  return type;
}

void write_string_attribute(hid_t at, const char* name, const std::string& value, bool variable) {
  const hid_t type = string_type(value.size(), variable);
  const hid_t space = scalar_space();
  const hid_t attr = checked(H5Acreate2(at, name, type, space, H5P_DEFAULT, H5P_DEFAULT), "H5Acreate2");
  const char* pointer = value.c_str();
  std::vector<char> fixed(std::max<std::size_t>(value.size(), 1), '\0');
  std::copy(value.begin(), value.end(), fixed.begin());
  checked(H5Awrite(attr, type, variable ? static_cast<const void*>(&pointer) : fixed.data()),
          "H5Awrite");
  H5Aclose(attr);
  H5Sclose(space);
  H5Tclose(type);
}

template <class T>
void write_number_attribute(hid_t at, const char* name, hid_t file_type, hid_t mem_type,
                            const std::vector<T>& values, bool scalar) {
  const hid_t space = scalar ? scalar_space() : line_space(values.size());
  const hid_t attr = checked(H5Acreate2(at, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT), "H5Acreate2");
  checked(H5Awrite(attr, mem_type, values.data()), "H5Awrite");
  H5Aclose(attr);
  H5Sclose(space);
}

// One root attribute: the valid value or a mutation of it.
void attribute(FuzzedDataProvider& in, hid_t root, const char* name, const std::string& text,
               double number, bool is_text) {
  switch (in.ConsumeIntegralInRange<int>(0, 6)) {
    case 0:  // valid
      if (is_text) {
        write_string_attribute(root, name, text, false);
      } else if (std::string_view(name) == "format_version") {
        write_number_attribute<std::int64_t>(root, name, H5T_STD_I64LE, H5T_NATIVE_INT64, {1}, true);
      } else {
        write_number_attribute<double>(root, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {number}, true);
      }
      return;
    case 1:  // missing
      return;
    case 2:
      write_string_attribute(root, name, in.ConsumeRandomLengthString(24), in.ConsumeBool());
      return;
    case 3:
      write_number_attribute<double>(root, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                                     {interesting(in, number)}, true);
      return;
    case 4:
      write_number_attribute<std::int64_t>(root, name, H5T_STD_I64LE, H5T_NATIVE_INT64,
                                           {in.ConsumeIntegral<std::int64_t>()}, true);
      return;
    case 5:  // an array where a scalar belongs
      write_number_attribute<double>(root, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                                     {number, interesting(in, number)}, false);
      return;
    default:  // float32 or unsigned types, converted on read
      if (in.ConsumeBool()) {
        write_number_attribute<float>(root, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT,
                                      {static_cast<float>(interesting(in, number))}, true);
      } else {
        write_number_attribute<std::uint64_t>(root, name, H5T_STD_U64LE, H5T_NATIVE_UINT64,
                                              {in.ConsumeIntegral<std::uint64_t>()}, true);
      }
      return;
  }
}

void write_doubles(hid_t at, const char* name, const std::vector<double>& values, hid_t dcpl,
                   hid_t file_type = H5T_IEEE_F64LE) {
  // Chunks larger than a fixed extent are refused; the writer's datasets are extendable too.
  const hsize_t n = values.size();
  const hsize_t unlimited = H5S_UNLIMITED;
  const hid_t space = checked(
      H5Screate_simple(1, &n, dcpl == H5P_DEFAULT ? nullptr : &unlimited), "H5Screate_simple");
  const hid_t set = checked(H5Dcreate2(at, name, file_type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT), "H5Dcreate2");
  if (!values.empty())
    checked(H5Dwrite(set, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), "H5Dwrite");
  H5Dclose(set);
  H5Sclose(space);
}

// One dataset: the valid values or a mutation of them (values, length, type, shape).
void dataset(FuzzedDataProvider& in, hid_t group, const char* name, std::vector<double> values,
             bool chunk_it) {
  hid_t dcpl = H5P_DEFAULT;
  if (chunk_it && in.ConsumeBool()) {
    dcpl = checked(H5Pcreate(H5P_DATASET_CREATE), "H5Pcreate");
    const hsize_t chunk = in.ConsumeIntegralInRange<hsize_t>(1, 8);
    checked(H5Pset_chunk(dcpl, 1, &chunk), "H5Pset_chunk");
  }
  switch (in.ConsumeIntegralInRange<int>(0, 9)) {
    case 0:
      write_doubles(group, name, values, dcpl);
      break;
    case 1:  // missing
      break;
    case 2: {  // values changed, rows added or dropped
      const std::size_t n = in.ConsumeIntegralInRange<std::size_t>(0, values.size() + 3);
      std::vector<double> changed(n);
      for (std::size_t i = 0; i < n; ++i) {
        const double usual = i < values.size() ? values[i] : (values.empty() ? 1.0 : values.back());
        changed[i] = interesting(in, usual);
      }
      write_doubles(group, name, changed, dcpl);
      break;
    }
    case 3:
      write_doubles(group, name, values, dcpl, H5T_STD_I64LE);
      break;
    case 4:
      write_doubles(group, name, values, dcpl, H5T_IEEE_F32LE);
      break;
    case 5: {  // text where numbers belong
      const hid_t type = string_type(8, in.ConsumeBool());
      const hid_t space = line_space(1);
      const hid_t set = checked(H5Dcreate2(group, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), "H5Dcreate2");
      H5Dclose(set);
      H5Sclose(space);
      H5Tclose(type);
      break;
    }
    case 6: {  // 2-D
      const std::array<hsize_t, 2> dims = {2, std::max<hsize_t>(values.size(), 1)};
      const hid_t space = checked(H5Screate_simple(2, dims.data(), nullptr), "H5Screate_simple");
      const hid_t set = checked(H5Dcreate2(group, name, H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), "H5Dcreate2");
      H5Dclose(set);
      H5Sclose(space);
      break;
    }
    case 7: {  // scalar
      const hid_t space = scalar_space();
      const hid_t set = checked(H5Dcreate2(group, name, H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), "H5Dcreate2");
      const double value = values.empty() ? 0.0 : values.front();
      checked(H5Dwrite(set, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, &value), "H5Dwrite");
      H5Dclose(set);
      H5Sclose(space);
      break;
    }
    case 8: {  // a group in the dataset's place
      const hid_t g = checked(H5Gcreate2(group, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), "H5Gcreate2");
      H5Gclose(g);
      break;
    }
    default:  // empty
      write_doubles(group, name, {}, dcpl);
      break;
  }
  if (dcpl != H5P_DEFAULT) H5Pclose(dcpl);
}

void write_recipe(FuzzedDataProvider& in, const std::string& path) {
  static const binflow::science::Observation obs = binflow::science::default_observation(3600.0);
  const hid_t file = checked(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), "H5Fcreate");
  const auto& info = obs.info;
  attribute(in, file, "format", "eventlist", 0.0, true);
  attribute(in, file, "format_version", "", 1.0, false);
  attribute(in, file, "mjdref", "", info.mjdref, false);
  attribute(in, file, "object", info.object, 0.0, true);
  attribute(in, file, "ra_pnt", "", info.ra_pnt, false);
  attribute(in, file, "dec_pnt", "", info.dec_pnt, false);
  attribute(in, file, "deadtime_fraction", "", info.deadtime_fraction, false);
  const auto group = [&](const char* name) {
    return checked(H5Gcreate2(file, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), "H5Gcreate2");
  };
  const hid_t irf = group("irf");
  dataset(in, irf, "energy", obs.irf.energy, false);
  dataset(in, irf, "aeff", obs.irf.aeff, false);
  dataset(in, irf, "psf_sigma", obs.irf.psf_sigma, false);
  dataset(in, irf, "bkg_rate", obs.irf.bkg_rate, false);
  H5Gclose(irf);
  const hid_t gti = group("gti");
  dataset(in, gti, "start", obs.gti.start, false);
  dataset(in, gti, "stop", obs.gti.stop, false);
  H5Gclose(gti);
  const hid_t events = group("events");
  dataset(in, events, "time", {10.0, 20.0, 20.0, 500.0, 1900.0, 2000.0, 3000.0, 3599.0}, true);
  dataset(in, events, "energy", {1.0, 0.2, 30.0, 1.5, 2.0, 0.7, 5.0, 90.0}, true);
  dataset(in, events, "ra", {83.6, 83.7, 84.0, 83.5, 83.6, 82.9, 83.63, 83.63}, true);
  dataset(in, events, "dec", {22.0, 22.1, 21.9, 22.5, 22.0, 23.0, 22.01, 22.01}, true);
  H5Gclose(events);
  checked(H5Fclose(file), "H5Fclose");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string path = binflow::fuzz::scratch_path("events.h5");
  static const bool quiet = [] { return H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr) >= 0; }();
  static_cast<void>(quiet);
  FuzzedDataProvider in(data, size);
  write_recipe(in, path);
  binflow::fuzz::expect_usage_errors_only(target, [&] {
    const binflow::science::EventFileReader reader(path);
    binflow::fuzz::require(reader.size() >= 0, target, "a negative number of rows");
    static_cast<void>(reader.read_time_range(-inf, inf));
    while (in.remaining_bytes() > 0) {
      const double t0 = interesting(in, 0.0);
      const double t1 = interesting(in, 3600.0);
      const auto events = reader.read_time_range(t0, t1);
      for (const double t : events.time) {
        binflow::fuzz::require(t >= t0 && t < t1, target, "an event outside the range read");
      }
    }
  });
  return 0;
}
