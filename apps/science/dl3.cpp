#include "science/dl3.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <system_error>
#include <utility>

#include <fmt/format.h>

#include "binflow/error.hpp"
#include "binflow/file_checks.hpp"
#include "science/gti.hpp"
#include "science/sorted_column.hpp"
#include "science/units.hpp"

namespace binflow::science::dl3 {

namespace {

namespace fs = std::filesystem;

// The binary search reads single TIME cells until the bracket holds at most this many rows,
// then reads the bracket at once (8 KiB of TIME; FITS rows are stored whole, so a few
// cfitsio blocks per 100 rows of a typical EVENTS table).
constexpr std::int64_t search_window = 1024;

constexpr std::string_view hdf5_signature = "\x89HDF\r\n\x1a\n";

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string upper(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return out;
}

std::string trim(std::string_view text) {
  const std::size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  return std::string(text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1));
}

// The index file `stem`.fits or `stem`.fits.gz in `dir`, or "" if neither exists.
std::string index_file(const fs::path& dir, std::string_view stem) {
  std::error_code ec;
  for (const char* suffix : {".fits", ".fits.gz"}) {
    const fs::path p = dir / fmt::format("{}{}", stem, suffix);
    if (fs::is_regular_file(p, ec)) return p.string();
  }
  return {};
}

// Lines of a DL3 list: '#' starts a comment, blank lines are skipped. Each entry keeps its
// 1-based line number.
struct ListEntry {
  int line = 0;
  std::vector<std::string> fields;
};

std::vector<ListEntry> list_entries(std::istream& in) {
  std::vector<ListEntry> entries;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (const std::size_t hash = line.find('#'); hash != std::string::npos) line.erase(hash);
    std::istringstream fields(line);
    ListEntry entry{number, {}};
    for (std::string field; fields >> field;) entry.fields.push_back(field);
    if (!entry.fields.empty()) entries.push_back(std::move(entry));
  }
  return entries;
}

}  // namespace

// ---- input kind ----

std::string_view to_string(InputKind kind) {
  switch (kind) {
    case InputKind::event_file:
      return "event file";
    case InputKind::dl3_file:
      return "DL3 file";
    case InputKind::dl3_index:
      return "DL3 index directory";
    case InputKind::dl3_list:
      return "list of DL3 files";
  }
  return "?";
}

InputKind input_kind(const std::string& inobs) {
  std::error_code ec;
  const fs::file_status status = fs::status(inobs, ec);
  if (inobs.empty() || !fs::exists(status)) {
    throw UsageError(fmt::format("{}: no such file or directory", inobs));
  }
  if (fs::is_directory(status)) {
    const std::string hdu_index = index_file(inobs, "hdu-index");
    const std::string obs_index = index_file(inobs, "obs-index");
    if (hdu_index.empty() || obs_index.empty()) {
      throw UsageError(fmt::format(
          "{}: is a directory without {} (a DL3 index directory holds hdu-index.fits[.gz] and "
          "obs-index.fits[.gz])",
          inobs,
          hdu_index.empty() && obs_index.empty() ? "either index file"
          : hdu_index.empty()                    ? "hdu-index.fits[.gz]"
                                                 : "obs-index.fits[.gz]"));
    }
    return InputKind::dl3_index;
  }
  std::ifstream in(inobs, std::ios::binary);
  if (!in) throw UsageError(fmt::format("{}: cannot be read", inobs));
  // 64 KiB: enough to see the HDF5 signature at its possible offsets 0, 512, ..., 32768 and
  // to tell text from binary.
  std::string head(65536, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<std::size_t>(in.gcount()));
  if (head.empty()) throw UsageError(fmt::format("{}: is empty", inobs));
  for (std::size_t offset = 0; offset + hdf5_signature.size() <= head.size();
       offset = offset == 0 ? 512 : offset * 2) {
    if (head.compare(offset, hdf5_signature.size(), hdf5_signature) == 0) {
      return InputKind::event_file;
    }
  }
  if (fits::has_fits_signature(inobs)) return InputKind::dl3_file;
  if (head.find('\0') != std::string::npos) {
    throw UsageError(fmt::format(
        "{}: is neither an HDF5 event file, a FITS file, nor a text list of DL3 files (binary "
        "content)",
        inobs));
  }
  std::istringstream text(head);
  if (list_entries(text).empty()) {
    throw UsageError(
        fmt::format("{}: is a text file without an entry (a list of DL3 files has one path per "
                    "line)",
                    inobs));
  }
  return InputKind::dl3_list;
}

// ---- time ----

double TimeReference::mjd(double seconds) const {
  return static_cast<double>(mjdref_int) + (mjdref_frac + seconds / 86400.0);
}

double TimeReference::seconds(double mjd) const {
  return ((mjd - static_cast<double>(mjdref_int)) - mjdref_frac) * 86400.0;
}

std::vector<std::size_t> DataSet::overlapping(double t0, double t1) const {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < observations_.size(); ++i) {
    if (observations_[i].tstart() < t1 && t0 < observations_[i].tstop()) out.push_back(i);
  }
  return out;
}

std::int64_t DataSet::n_events() const {
  std::int64_t n = 0;
  for (const Observation& o : observations_) n += o.n_events;
  return n;
}

namespace {

// ---- where an observation's HDUs are ----

struct IrfLocation {
  HduLocation where;
  IrfClass irf_class;
};

struct ObservationSource {
  std::string origin;  // for messages: "list.txt:3", "hdu-index.fits (OBS_ID 23523)"
  std::optional<std::int64_t> obs_id;
  std::optional<HduLocation> events;
  std::optional<HduLocation> gti;
  std::optional<IrfLocation> aeff;
  std::optional<IrfLocation> psf;
  std::optional<IrfLocation> bkg;
  std::optional<IrfLocation> edisp;
  bool point_like = false;
};

// The class of a response HDU lacking HDUCLAS4, from its EXTNAME and columns (older CTA
// and ctools files).
std::optional<IrfClass> class_from_content(fits::File& file, const std::string& extname) {
  const std::string name = upper(extname);
  if (name == "EFFECTIVE AREA" || name == "AEFF_2D") return IrfClass::aeff_2d;
  if (name == "POINT SPREAD FUNCTION" || name.rfind("PSF_2D", 0) == 0 || name == "PSF") {
    if (file.has_column("SIGMA_1")) return IrfClass::psf_3gauss;
    if (file.has_column("RPSF")) return IrfClass::psf_table;
    if (file.has_column("GAMMA")) return IrfClass::psf_king;
    return std::nullopt;
  }
  if (name == "BACKGROUND" || name.rfind("BKG", 0) == 0) {
    if (file.has_column("DETX_LO")) return IrfClass::bkg_3d;
    if (file.has_column("THETA_LO")) return IrfClass::bkg_2d;
    return std::nullopt;
  }
  if (name == "ENERGY DISPERSION" || name == "EDISP_2D") return IrfClass::edisp_2d;
  if (name == "RAD_MAX") return IrfClass::rad_max_2d;
  return std::nullopt;
}

void set_irf(std::optional<IrfLocation>& slot, IrfLocation location, std::string_view kind) {
  if (slot) {
    throw UsageError(fmt::format("{}: two {} HDUs, [{}] and [{}]: which one to use is ambiguous",
                                 location.where.file, kind, slot->where.hdu, location.where.hdu));
  }
  slot = std::move(location);
}

void place_irf(ObservationSource& source, IrfLocation location) {
  switch (location.irf_class) {
    case IrfClass::aeff_2d:
      set_irf(source.aeff, std::move(location), "effective area");
      break;
    case IrfClass::psf_3gauss:
    case IrfClass::psf_table:
    case IrfClass::psf_king:
      set_irf(source.psf, std::move(location), "PSF");
      break;
    case IrfClass::bkg_2d:
    case IrfClass::bkg_3d:
      set_irf(source.bkg, std::move(location), "background");
      break;
    case IrfClass::edisp_2d:
      set_irf(source.edisp, std::move(location), "energy dispersion");
      break;
    case IrfClass::rad_max_2d:
      source.point_like = true;
      break;
  }
}

// Scans the HDUs of `path` for EVENTS, GTI and response HDUs.
void scan_file(const std::string& path, ObservationSource& source, bool want_events) {
  fits::File file = fits::File::open(path);
  const int count = file.hdu_count();
  for (int index = 1; index < count; ++index) {
    file.move_to(index);
    const std::string extname = file.hdu();
    const std::string class1 = upper(trim(file.key_string("HDUCLAS1").value_or("")));
    if (want_events && (class1 == "EVENTS" || upper(extname) == "EVENTS")) {
      if (source.events) {
        throw UsageError(
            fmt::format("{}: two EVENTS HDUs, [{}] and [{}]", path, source.events->hdu, extname));
      }
      source.events = HduLocation{path, extname};
      if (std::optional<std::int64_t> id = file.key_int("OBS_ID"); id) source.obs_id = id;
      continue;
    }
    if (want_events && (class1 == "GTI" || upper(extname) == "GTI")) {
      if (!source.gti) source.gti = HduLocation{path, extname};
      continue;
    }
    std::optional<IrfClass> irf_class;
    if (class1 == "RESPONSE") {
      const std::string class4 = trim(file.key_string("HDUCLAS4").value_or(""));
      irf_class = irf_class_from_string(class4);
      if (!irf_class && !class4.empty()) continue;  // a response binflow does not use
      if (upper(trim(file.key_string("HDUCLAS3").value_or(""))) == "POINT-LIKE") {
        source.point_like = true;
      }
    }
    if (!irf_class) irf_class = class_from_content(file, extname);
    if (irf_class) place_irf(source, {{path, extname}, *irf_class});
  }
}

ObservationSource source_from_files(const std::string& origin, const std::string& events_file,
                                    const std::string& irf_file) {
  ObservationSource source;
  source.origin = origin;
  scan_file(events_file, source, true);
  if (!irf_file.empty()) {
    if (source.aeff || source.psf || source.bkg) {
      throw UsageError(fmt::format("{}: {} has response HDUs of its own and {} is given too",
                                   origin, events_file, irf_file));
    }
    scan_file(irf_file, source, false);
  }
  return source;
}

std::string resolve(const fs::path& base, const std::string& path) {
  const fs::path p(path);
  return (p.is_absolute() ? p : base / p).lexically_normal().string();
}

std::vector<ObservationSource> sources_from_list(const std::string& list) {
  std::ifstream in(list);
  if (!in) throw UsageError(fmt::format("{}: cannot be read", list));
  const fs::path base = fs::path(list).parent_path();
  std::vector<ObservationSource> sources;
  for (const ListEntry& entry : list_entries(in)) {
    const std::string origin = fmt::format("{}:{}", list, entry.line);
    if (entry.fields.size() > 2) {
      throw UsageError(fmt::format(
          "{}: expected a DL3 file and optionally the file of its response, found {} fields",
          origin, entry.fields.size()));
    }
    std::vector<std::string> paths;
    for (const std::string& field : entry.fields) {
      const std::string path = resolve(base, field);
      if (const auto problem = input_file_problem(path, false, true)) {
        throw UsageError(fmt::format("{}: {}: {}", origin, path, *problem));
      }
      if (!fits::has_fits_signature(path)) {
        throw UsageError(fmt::format("{}: {}: not a FITS file", origin, path));
      }
      paths.push_back(path);
    }
    sources.push_back(source_from_files(origin, paths[0], paths.size() > 1 ? paths[1] : ""));
  }
  return sources;
}

std::vector<ObservationSource> sources_from_index(const std::string& dir,
                                                  const std::vector<std::int64_t>& obs_ids) {
  const std::string hdu_index = index_file(dir, "hdu-index");
  const std::string obs_index = index_file(dir, "obs-index");
  std::vector<std::int64_t> ids = obs_ids;
  {
    fits::File obs = fits::File::open(obs_index);
    obs.move_to(1);
    const std::vector<std::int64_t> listed = obs.read_int64s("OBS_ID");
    if (ids.empty()) {
      ids = listed;
    } else {
      for (const std::int64_t id : ids) {
        if (std::find(listed.begin(), listed.end(), id) == listed.end()) {
          throw UsageError(fmt::format("{}: OBS_ID {} is not in the index", obs_index, id));
        }
      }
    }
  }
  fits::File index = fits::File::open(hdu_index);
  index.move_to(1);
  const std::string table = fmt::format("{}[{}]", hdu_index, index.hdu());
  const std::vector<std::int64_t> row_ids = index.read_int64s("OBS_ID");
  const std::vector<std::string> types = index.read_strings("HDU_TYPE");
  const std::vector<std::string> classes = index.read_strings("HDU_CLASS");
  const std::vector<std::string> dirs = index.read_strings("FILE_DIR");
  const std::vector<std::string> names = index.read_strings("FILE_NAME");
  const std::vector<std::string> hdus = index.read_strings("HDU_NAME");
  const fs::path base(dir);
  std::vector<ObservationSource> sources;
  for (const std::int64_t id : ids) {
    ObservationSource source;
    source.origin = fmt::format("{} (OBS_ID {})", table, id);
    source.obs_id = id;
    for (std::size_t row = 0; row < row_ids.size(); ++row) {
      if (row_ids[row] != id) continue;
      const std::string type = lower(trim(types[row]));
      const std::string class_name = lower(trim(classes[row]));
      const fs::path file_dir(trim(dirs[row]));
      const std::string file =
          ((file_dir.is_absolute() ? file_dir : base / file_dir) / trim(names[row]))
              .lexically_normal()
              .string();
      HduLocation location{file, trim(hdus[row])};
      const auto duplicate = [&] {
        return UsageError(
            fmt::format("{} row {}: a second {} HDU for OBS_ID {}", table, row, type, id));
      };
      if (type == "events") {
        if (source.events) throw duplicate();
        source.events = location;
      } else if (type == "gti") {
        if (source.gti) throw duplicate();
        source.gti = location;
      } else if (type == "aeff" || type == "psf" || type == "bkg" || type == "edisp" ||
                 type == "rad_max") {
        const std::optional<IrfClass> irf_class = irf_class_from_string(class_name);
        if (!irf_class) {
          throw UsageError(
              fmt::format("{} row {}: HDU_CLASS '{}' of HDU_TYPE {} is not one "
                          "binflow knows",
                          table, row, trim(classes[row]), type));
        }
        place_irf(source, {location, *irf_class});
      }
    }
    if (!source.events) {
      throw UsageError(fmt::format("{}: no events HDU for OBS_ID {}", table, id));
    }
    sources.push_back(std::move(source));
  }
  return sources;
}

// ---- reading one observation ----

struct TimeFrame {
  std::int64_t mjdref_int = 0;
  double mjdref_frac = 0.0;
  std::optional<std::string> timesys;
  std::optional<std::string> timeref;
  double unit = 1.0;  // TIMEUNIT in s
};

// MJDs beyond +-10^7 (the year 29 000) are no reference time of an observation, and would
// not convert to an integer day (found by fuzz_dl3_file: MJDREFI = 2^63).
constexpr double mjd_limit = 1e7;

// MJDREFI + MJDREFF, or MJDREF; TIMESYS, TIMEREF, TIMEUNIT of the current HDU.
std::optional<TimeFrame> time_frame(fits::File& file) {
  TimeFrame frame;
  const std::optional<double> mjdrefi = file.key_double("MJDREFI");
  const std::optional<double> mjdreff = file.key_double("MJDREFF");
  const std::optional<double> mjdref = file.key_double("MJDREF");
  if (mjdrefi) {
    if (!mjdreff) {
      throw UsageError(fmt::format("{}[{}]: header keyword MJDREFF is missing (MJDREFI is given)",
                                   file.path(), file.hdu()));
    }
    if (!std::isfinite(*mjdrefi) || std::floor(*mjdrefi) != *mjdrefi ||
        std::abs(*mjdrefi) > mjd_limit || !std::isfinite(*mjdreff) ||
        std::abs(*mjdreff) > mjd_limit) {
      throw UsageError(fmt::format("{}[{}]: MJDREFI {} / MJDREFF {} are not an MJD", file.path(),
                                   file.hdu(), *mjdrefi, *mjdreff));
    }
    frame.mjdref_int = static_cast<std::int64_t>(*mjdrefi);
    frame.mjdref_frac = *mjdreff;
  } else if (mjdref) {
    if (!std::isfinite(*mjdref) || std::abs(*mjdref) > mjd_limit) {
      throw UsageError(
          fmt::format("{}[{}]: MJDREF {} is not an MJD", file.path(), file.hdu(), *mjdref));
    }
    frame.mjdref_int = static_cast<std::int64_t>(std::floor(*mjdref));
    frame.mjdref_frac = *mjdref - std::floor(*mjdref);
  } else {
    return std::nullopt;
  }
  if (auto sys = file.key_string("TIMESYS")) frame.timesys = upper(trim(*sys));
  if (auto ref = file.key_string("TIMEREF")) frame.timeref = upper(trim(*ref));
  // FITS (Rots et al. 2015, section 4.3): TIMEUNIT defaults to s.
  if (auto unit = file.key_string("TIMEUNIT")) {
    frame.unit = units::require_factor(*unit, units::Quantity::time,
                                       fmt::format("{}[{}] TIMEUNIT", file.path(), file.hdu()));
  }
  return frame;
}

double shift_between(const TimeFrame& from, const TimeReference& to) {
  return (static_cast<double>(from.mjdref_int - to.mjdref_int) +
          (from.mjdref_frac - to.mjdref_frac)) *
         86400.0;
}

struct EventColumns {
  std::int64_t rows = 0;
  double time = 1.0, energy = 1.0, ra = 1.0, dec = 1.0;  // unit factors
};

EventColumns event_columns(fits::File& file) {
  EventColumns columns;
  columns.rows = file.rows();
  const auto factor = [&](const std::string& name, units::Quantity quantity) {
    if (file.cell_size(name) != 1) {
      throw UsageError(fmt::format("{}[{}] {}: has {} values per row, expected one", file.path(),
                                   file.hdu(), name, file.cell_size(name)));
    }
    static_cast<void>(file.read_doubles(name, 0, 0));  // a numeric column
    return units::require_factor(file.column_unit(name), quantity,
                                 fmt::format("{}[{}] {}", file.path(), file.hdu(), name));
  };
  columns.time = factor("TIME", units::Quantity::time);
  columns.energy = factor("ENERGY", units::Quantity::energy);
  columns.ra = factor("RA", units::Quantity::angle);
  columns.dec = factor("DEC", units::Quantity::angle);
  return columns;
}

class Reader {
public:
  explicit Reader(std::vector<std::string>& notes) : notes_(notes) {}

  Observation read(const ObservationSource& source, std::optional<TimeReference>& reference,
                   std::string& reference_where) {
    if (!source.events) throw InternalError(fmt::format("{}: no EVENTS HDU", source.origin));
    Observation obs;
    obs.events = *source.events;
    fits::File& file = open_at(obs.events);
    const std::string where = obs.events.text();
    const auto key = [&](const std::string& name) { return fmt::format("{} {}", where, name); };
    if (source.obs_id) {
      obs.obs_id = *source.obs_id;
    } else if (const auto id = file.key_int("OBS_ID")) {
      obs.obs_id = *id;
    }
    obs.object = trim(file.key_string("OBJECT").value_or(""));

    std::optional<TimeFrame> frame = time_frame(file);
    if (!frame) {
      throw UsageError(
          fmt::format("{}: header keywords MJDREFI and MJDREFF (or MJDREF) are missing", where));
    }
    if (!frame->timesys)
      throw UsageError(fmt::format("{}: header keyword TIMESYS is missing", where));
    const std::string timeref = frame->timeref.value_or("LOCAL");
    if (!reference) {
      reference = TimeReference{frame->mjdref_int, frame->mjdref_frac, *frame->timesys, timeref};
      reference_where = where;
    } else if (*frame->timesys != reference->timesys) {
      throw UsageError(fmt::format(
          "{}: '{}' differs from '{}' of the first observation ({}); all observations must "
          "share one TIMESYS",
          key("TIMESYS"), *frame->timesys, reference->timesys, reference_where));
    } else if (timeref != reference->timeref) {
      throw UsageError(fmt::format(
          "{}: '{}' differs from '{}' of the first observation ({}); times of different "
          "references cannot share one axis",
          key("TIMEREF"), timeref, reference->timeref, reference_where));
    }
    obs.time_shift = shift_between(*frame, *reference);

    obs.ra_pnt = file.require_double("RA_PNT");
    obs.dec_pnt = file.require_double("DEC_PNT");
    if (!std::isfinite(obs.ra_pnt)) {
      throw UsageError(fmt::format("{}: is {}, expected a finite angle (deg)", key("RA_PNT"),
                                   describe_value(obs.ra_pnt)));
    }
    if (!std::isfinite(obs.dec_pnt) || std::abs(obs.dec_pnt) > 90.0) {
      throw UsageError(fmt::format("{}: is {}, expected a declination in [-90, 90] deg",
                                   key("DEC_PNT"), describe_value(obs.dec_pnt)));
    }
    // The target (GADF's RA_OBJ/DEC_OBJ, optional): the source position a tool defaults to.
    const std::optional<double> ra_obj = file.key_double("RA_OBJ");
    const std::optional<double> dec_obj = file.key_double("DEC_OBJ");
    if (ra_obj && dec_obj && std::isfinite(*ra_obj) && std::isfinite(*dec_obj) &&
        std::abs(*dec_obj) <= 90.0) {
      obs.target = std::array<double, 2>{*ra_obj, *dec_obj};
    }
    obs.ontime = file.require_double("ONTIME") * frame->unit;
    if (!std::isfinite(obs.ontime) || obs.ontime <= 0.0) {
      throw UsageError(fmt::format("{}: is {}, expected a positive time", key("ONTIME"),
                                   describe_value(obs.ontime)));
    }
    if (const auto livetime = file.key_double("LIVETIME")) {
      obs.livetime = *livetime * frame->unit;
      if (!std::isfinite(obs.livetime) || obs.livetime <= 0.0 ||
          obs.livetime > obs.ontime * (1.0 + 1e-9)) {
        throw UsageError(fmt::format("{}: is {} s, expected a positive time up to ONTIME ({} s)",
                                     key("LIVETIME"), describe_value(obs.livetime), obs.ontime));
      }
      obs.livetime = std::min(obs.livetime, obs.ontime);
    } else if (const auto deadc = file.key_double("DEADC")) {
      if (!std::isfinite(*deadc) || *deadc <= 0.0 || *deadc > 1.0) {
        throw UsageError(fmt::format("{}: is {}, expected a livetime fraction in (0, 1]",
                                     key("DEADC"), describe_value(*deadc)));
      }
      obs.livetime = obs.ontime * *deadc;
    } else {
      throw UsageError(
          fmt::format("{}: header keywords LIVETIME and DEADC are both missing", where));
    }
    obs.n_events = event_columns(file).rows;

    read_gti(source, obs, *frame, *reference);
    read_response(source, obs);
    return obs;
  }

private:
  void read_gti(const ObservationSource& source, Observation& obs, const TimeFrame& events_frame,
                const TimeReference& reference) {
    if (!source.gti) {
      throw UsageError(fmt::format("{}: no GTI HDU for this observation", source.origin));
    }
    fits::File& file = open_at(*source.gti);
    const std::string where = source.gti->text();
    // The GTI HDU's own reference if it has one (GADF), else that of EVENTS.
    TimeFrame frame = time_frame(file).value_or(events_frame);
    if (frame.timesys && *frame.timesys != reference.timesys) {
      throw UsageError(fmt::format("{} TIMESYS: '{}' differs from '{}' of the events", where,
                                   *frame.timesys, reference.timesys));
    }
    const double shift = shift_between(frame, reference);
    for (const char* name : {"START", "STOP"}) {
      const double factor = units::require_factor(file.column_unit(name), units::Quantity::time,
                                                  fmt::format("{} {}", where, name));
      std::vector<double> values = file.read_doubles(name);
      for (double& v : values) v = v * factor + shift;
      (std::string_view(name) == "START" ? obs.gti.start : obs.gti.stop) = std::move(values);
    }
    if (obs.gti.size() == 0) throw UsageError(fmt::format("{}: has no rows (no good time)", where));
    validate_gti(obs.gti, where);
  }

  void read_response(const ObservationSource& source, Observation& obs) {
    const std::string& origin = source.origin;
    if (!source.aeff) {
      throw UsageError(
          fmt::format("{}: no effective area (aeff_2d) HDU for this observation", origin));
    }
    if (!source.psf) {
      throw UsageError(fmt::format(
          "{}: no PSF (psf_3gauss or psf_table) HDU for this observation{}", origin,
          source.point_like ? "; point-like IRFs (with RAD_MAX) need an ON/OFF analysis, which "
                              "binflow does not do"
                            : ""));
    }
    if (!source.bkg) {
      throw UsageError(fmt::format(
          "{}: no background (bkg_2d or bkg_3d) HDU for this observation: binflow's likelihood "
          "needs a background model (an ON/OFF analysis is out of scope)",
          origin));
    }
    obs.psf_class = source.psf->irf_class;
    obs.bkg_class = source.bkg->irf_class;
    obs.irf.aeff = cached(aeff_, source.aeff->where, [&](fits::File& f) {
      if (source.aeff->irf_class != IrfClass::aeff_2d) {
        throw UsageError(fmt::format("{}: effective area class {} is not supported (aeff_2d is)",
                                     source.aeff->where.text(), to_string(source.aeff->irf_class)));
      }
      return read_effective_area(f);
    });
    obs.irf.psf = cached(psf_, source.psf->where,
                         [&](fits::File& f) { return read_psf(f, source.psf->irf_class); });
    obs.irf.bkg = cached(bkg_, source.bkg->where, [&](fits::File& f) {
      bool assumed = false;
      Background bkg = read_background(f, source.bkg->irf_class, &assumed);
      if (assumed) {
        notes_.push_back(fmt::format(
            "{}: bkg_3d without FOVALIGN, taken as RADEC (Gammapy 1.0's default)", bkg.source));
      }
      return bkg;
    });
    if (source.edisp) obs.edisp = source.edisp->where;
  }

  template <class T, class Read>
  std::shared_ptr<const T> cached(std::map<std::string, std::shared_ptr<const T>>& cache,
                                  const HduLocation& where, Read read) {
    const std::string key = where.text();
    if (const auto it = cache.find(key); it != cache.end()) return it->second;
    auto value = std::make_shared<const T>(read(open_at(where)));
    cache.emplace(key, value);
    return value;
  }

  // The file of `where`, moved to its HDU. The last file opened stays open: an observation's
  // HDUs are read one after the other and are mostly in one file, which cfitsio decompresses
  // in full at every open of a .gz (once per file instead of once per HDU).
  fits::File& open_at(const HduLocation& where) {
    if (!open_file_ || open_path_ != where.file) {
      open_file_.reset();
      open_file_.emplace(fits::File::open(where.file));
      open_path_ = where.file;
    }
    open_file_->move_to(where.hdu);
    return *open_file_;
  }

  std::vector<std::string>& notes_;
  std::optional<fits::File> open_file_;
  std::string open_path_;
  std::map<std::string, std::shared_ptr<const EffectiveArea>> aeff_;
  std::map<std::string, std::shared_ptr<const Psf>> psf_;
  std::map<std::string, std::shared_ptr<const Background>> bkg_;
};

}  // namespace

DataSet DataSet::open(const std::string& inobs, const std::vector<std::int64_t>& obs_ids) {
  DataSet set;
  set.inobs_ = inobs;
  set.kind_ = input_kind(inobs);
  std::vector<ObservationSource> sources;
  switch (set.kind_) {
    case InputKind::event_file:
      throw UsageError(fmt::format("{}: is an HDF5 event file, not DL3 input", inobs));
    case InputKind::dl3_file:
      sources.push_back(source_from_files(inobs, inobs, ""));
      break;
    case InputKind::dl3_list:
      sources = sources_from_list(inobs);
      break;
    case InputKind::dl3_index:
      sources = sources_from_index(inobs, obs_ids);
      break;
  }
  if (set.kind_ != InputKind::dl3_index) {
    // Files and lists: the EVENTS header's OBS_ID, or the 0-based position without one.
    for (std::size_t i = 0; i < sources.size(); ++i) {
      if (!sources[i].obs_id) sources[i].obs_id = static_cast<std::int64_t>(i);
    }
    if (!obs_ids.empty()) {
      std::vector<ObservationSource> selected;
      for (const std::int64_t id : obs_ids) {
        const auto it = std::find_if(sources.begin(), sources.end(),
                                     [&](const ObservationSource& s) { return s.obs_id == id; });
        if (it == sources.end()) {
          throw UsageError(fmt::format("{}: no observation with OBS_ID {}", inobs, id));
        }
        selected.push_back(*it);
      }
      sources = std::move(selected);
    }
  }
  for (ObservationSource& source : sources) {
    if (!source.events) {
      throw UsageError(fmt::format("{}: no EVENTS HDU", source.origin));
    }
  }

  Reader reader(set.notes_);
  std::optional<TimeReference> reference;
  std::string reference_where;
  std::set<std::int64_t> seen;
  std::size_t with_edisp = 0;
  for (const ObservationSource& source : sources) {
    Observation obs = reader.read(source, reference, reference_where);
    if (!seen.insert(obs.obs_id).second) {
      throw UsageError(
          fmt::format("{}: OBS_ID {} appears twice in {}", obs.events.text(), obs.obs_id, inobs));
    }
    if (obs.edisp) ++with_edisp;
    set.observations_.push_back(std::move(obs));
  }
  if (set.observations_.empty()) throw UsageError(fmt::format("{}: no observation", inobs));
  if (!reference) throw InternalError(fmt::format("{}: no time reference", inobs));
  set.time_ = *reference;
  if (with_edisp > 0) {
    set.notes_.push_back(
        fmt::format("{} of {} observations have an energy dispersion (edisp_2d); it is not applied "
                    "(reconstructed energy = true energy, as ctools' edisp=no)",
                    with_edisp, set.observations_.size()));
  }
  return set;
}

// ---- events ----

EventReader::EventReader(const Observation& observation)
    : file_(fits::File::open(observation.events.file)),
      where_(observation.events.text()),
      time_shift_(observation.time_shift) {
  file_.move_to(observation.events.hdu);
  const EventColumns columns = event_columns(file_);
  rows_ = columns.rows;
  time_factor_ = columns.time;
  energy_factor_ = columns.energy;
  ra_factor_ = columns.ra;
  dec_factor_ = columns.dec;
}

std::vector<double> EventReader::read_time(std::int64_t first, std::int64_t count) {
  time_rows_read_ += count;
  std::vector<double> values = file_.read_doubles("TIME", first, count);
  for (double& v : values) v = v * time_factor_ + time_shift_;
  return values;
}

std::int64_t EventReader::lower_bound(double t, std::int64_t lo, std::int64_t hi) {
  return lower_bound_sorted(
      [this](std::int64_t first, std::int64_t count) { return read_time(first, count); }, t, lo, hi,
      search_window, where_ + " TIME:");
}

Events EventReader::read_time_range(double t0, double t1, const BeforeRead& before_read) {
  if (!(t0 < t1) || rows_ == 0) return {};
  const std::int64_t first = lower_bound(t0, 0, rows_);
  const std::int64_t last = lower_bound(t1, first, rows_);
  if (before_read && last > first) before_read(last - first);
  return read_rows(first, last - first);
}

Events EventReader::read_all() { return read_rows(0, rows_); }

Events EventReader::read_rows(std::int64_t first, std::int64_t count) {
  Events events;
  if (count == 0) return events;
  events.time = read_time(first, count);
  const auto column = [&](const char* name, double factor) {
    std::vector<double> values = file_.read_doubles(name, first, count);
    for (double& v : values) v *= factor;
    return values;
  };
  events.energy = column("ENERGY", energy_factor_);
  events.ra = column("RA", ra_factor_);
  events.dec = column("DEC", dec_factor_);
  rows_read_ += count;
  const auto bad = [&](std::string_view name, std::size_t i, double value, std::string_view what) {
    return UsageError(fmt::format("{} {}: is {} at row {}{}", where_, name, describe_value(value),
                                  first + static_cast<std::int64_t>(i), what));
  };
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (!std::isfinite(events.time[i])) throw bad("TIME", i, events.time[i], "");
    if (i > 0 && events.time[i] < events.time[i - 1]) {
      const auto row = first + static_cast<std::int64_t>(i);
      throw UsageError(
          fmt::format("{} TIME: is not sorted (row {} < row {})", where_, row, row - 1));
    }
    if (!std::isfinite(events.energy[i]) || events.energy[i] <= 0.0) {
      throw bad("ENERGY", i, events.energy[i], ", expected a positive energy");
    }
    if (!std::isfinite(events.ra[i])) throw bad("RA", i, events.ra[i], "");
    if (!std::isfinite(events.dec[i]) || std::abs(events.dec[i]) > 90.0) {
      throw bad("DEC", i, events.dec[i], ", expected a declination in [-90, 90] deg");
    }
  }
  return events;
}

}  // namespace binflow::science::dl3
