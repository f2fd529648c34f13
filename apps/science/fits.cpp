#include "science/fits.hpp"

#include <fitsio.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <utility>

#include <fmt/format.h>

#include "binflow/error.hpp"
#include "binflow/file_checks.hpp"

namespace binflow::fits {

namespace {

fitsfile* as_fits(void* handle) { return static_cast<fitsfile*>(handle); }

// cfitsio keeps a stack of messages per failure; the first lines say most (the outermost
// call), so they are joined into one line after cfitsio's text for the status.
std::string error_text(int status) {
  std::array<char, FLEN_STATUS> text{};
  fits_get_errstatus(status, text.data());
  std::string out = text.data();
  std::array<char, FLEN_ERRMSG> message{};
  int lines = 0;
  while (fits_read_errmsg(message.data()) != 0) {
    if (lines++ < 3 && std::strlen(message.data()) > 0) out += fmt::format("; {}", message.data());
  }
  return out;
}

enum class Blame { user, system };

// Throws unless status == 0. `where` names file, HDU and item: "obs.fits[EVENTS] TIME".
void check(int status, std::string_view call, const std::string& where, Blame blame) {
  if (status == 0) return;
  const std::string message = fmt::format("{}: {} failed: {}", where, call, error_text(status));
  if (blame == Blame::user) throw UsageError(message);
  throw IoError(message);
}

// Header text must be printable ASCII (FITS 4.0, section 4.2.1).
std::string printable(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c < ' ' || c > '~') c = '?';
  }
  return out;
}

std::string upper(std::string_view name) {
  std::string out(name);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

// A keyword cfitsio writes as a standard 8-character one; anything else is HIERARCH.
bool is_standard_keyword(std::string_view name) {
  if (name.empty() || name.size() > 8) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

constexpr std::size_t card_length = 80;

// `value` cut into pieces whose quoted form (a ' written twice) fits `first` characters, then
// `rest` characters each: a doubled quote is never split between two cards.
std::vector<std::string> quoted_pieces(std::string_view value, std::size_t first,
                                       std::size_t rest) {
  std::vector<std::string> pieces(1);
  std::size_t room = first;
  for (const char c : value) {
    const std::size_t need = c == '\'' ? 2 : 1;
    if (pieces.back().size() + need > room) {
      pieces.emplace_back();
      room = rest;
    }
    pieces.back() += c == '\'' ? "''" : std::string(1, c);
  }
  return pieces;
}

// A HIERARCH card is "HIERARCH NAME = 'text'"; the long-string convention continues it as
// "text&'" followed by "CONTINUE  'text&'" cards, the last without '&'.
std::vector<std::string> hierarch_string_cards(const std::string& name, const std::string& value,
                                               const std::string& comment) {
  const std::string head = fmt::format("HIERARCH {} = '", name);
  constexpr std::string_view continue_head = "CONTINUE  '";
  // 2 characters for the closing "&'" of a continued card.
  if (head.size() + 2 >= card_length) {
    throw InternalError(fmt::format("FITS keyword {} is too long for a HIERARCH card", name));
  }
  std::string quoted;
  for (const char c : value) quoted += c == '\'' ? "''" : std::string(1, c);
  std::vector<std::string> cards;
  if (head.size() + quoted.size() + 1 <= card_length) {
    cards.push_back(head + quoted + "'");
  } else {
    const std::vector<std::string> pieces =
        quoted_pieces(value, card_length - head.size() - 2, card_length - continue_head.size() - 2);
    for (std::size_t i = 0; i < pieces.size(); ++i) {
      const bool last = i + 1 == pieces.size();
      cards.push_back(fmt::format("{}{}{}'", i == 0 ? head : std::string(continue_head), pieces[i],
                                  last ? "" : "&"));
    }
  }
  if (!comment.empty() && cards.back().size() + 3 < card_length) {
    cards.back() += " / " + comment;
  }
  for (std::string& card : cards) card.resize(std::min(card.size(), card_length));
  return cards;
}

bool ends_with(std::string_view text, std::string_view tail) {
  return text.size() >= tail.size() && text.substr(text.size() - tail.size()) == tail;
}

// Compresses `path` with gzip where it is (through `path.part`, renamed over it).
void gzip_in_place(const std::string& path) {
  const std::string part = path + ".part";
  std::ifstream in(path, std::ios::binary);
  gzFile out = gzopen(part.c_str(), "wb");
  if (!in || out == nullptr) {
    if (out != nullptr) gzclose(out);
    throw IoError(fmt::format("{}: cannot compress: {}", path, std::strerror(errno)));
  }
  std::vector<char> buffer(1 << 20);
  bool ok = true;
  while (ok && in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const auto n = static_cast<unsigned>(in.gcount());
    ok = n == 0 || gzwrite(out, buffer.data(), n) == static_cast<int>(n);
  }
  ok = gzclose(out) == Z_OK && ok && in.eof();
  std::error_code ec;
  if (ok) std::filesystem::rename(part, path, ec);
  if (!ok || ec) {
    std::filesystem::remove(part, ec);
    throw IoError(fmt::format("{}: gzip compression failed", path));
  }
}

}  // namespace

bool has_fits_signature(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::array<char, 9> head{};
  if (!in.read(head.data(), head.size())) return false;
  if (static_cast<unsigned char>(head[0]) == 0x1f && static_cast<unsigned char>(head[1]) == 0x8b)
    return true;  // gzip
  return std::string_view(head.data(), head.size()) == "SIMPLE  =";
}

File File::open(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    throw UsageError(fmt::format("{}: cannot open: {}", path, std::strerror(ENOENT)));
  }
  // Before any read: a FIFO named by an index or a list would block the open forever.
  if (const auto problem = input_file_problem(path, false, true)) {
    throw UsageError(fmt::format("{}: {}", path, *problem));
  }
  if (!has_fits_signature(path)) throw UsageError(fmt::format("{}: not a FITS file", path));
  fitsfile* f = nullptr;
  int status = 0;
  fits_open_file(&f, path.c_str(), READONLY, &status);
  check(status, "fits_open_file", path, Blame::user);
  return File(f, path);
}

File File::create(const std::string& path) {
  fitsfile* f = nullptr;
  int status = 0;
  // The name as it is: fits_create_file would read "[...]" or "(...)" in a user's path as
  // cfitsio's extended file-name syntax.
  fits_create_diskfile(&f, path.c_str(), &status);
  check(status, "fits_create_diskfile", path, Blame::system);
  // An empty primary HDU: GADF tables are extensions.
  fits_create_img(f, BYTE_IMG, 0, nullptr, &status);
  check(status, "fits_create_img", path, Blame::system);
  File file(f, path);
  file.gzip_ = ends_with(path, ".gz");
  return file;
}

File::File(File&& other) noexcept
    : handle_(std::exchange(other.handle_, nullptr)),
      path_(std::move(other.path_)),
      hdu_(std::move(other.hdu_)),
      gzip_(other.gzip_) {}

File& File::operator=(File&& other) noexcept {
  if (this != &other) {
    if (handle_ != nullptr) {
      int status = 0;
      fits_close_file(as_fits(handle_), &status);
    }
    handle_ = std::exchange(other.handle_, nullptr);
    path_ = std::move(other.path_);
    hdu_ = std::move(other.hdu_);
    gzip_ = other.gzip_;
  }
  return *this;
}

File::~File() {
  if (handle_ == nullptr) return;
  int status = 0;
  fits_close_file(as_fits(handle_), &status);
}

void File::close() {
  if (handle_ == nullptr) return;
  int status = 0;
  fits_close_file(as_fits(std::exchange(handle_, nullptr)), &status);
  check(status, "fits_close_file", path_, Blame::system);
  if (gzip_) gzip_in_place(path_);
}

std::string File::where() const { return fmt::format("{}[{}]", path_, hdu_); }

std::string File::where(const std::string& item) const {
  return fmt::format("{}[{}] {}", path_, hdu_, item);
}

void File::refresh_hdu_name() {
  int status = 0;
  std::array<char, FLEN_VALUE> name{};
  fits_read_key(as_fits(handle_), TSTRING, "EXTNAME", name.data(), nullptr, &status);
  if (status == KEY_NO_EXIST) {
    fits_clear_errmsg();
    hdu_ = "PRIMARY";
    return;
  }
  check(status, "fits_read_key", where("EXTNAME"), Blame::user);
  hdu_ = name.data();
}

bool File::has_hdu(const std::string& name) {
  int current = 0;
  fits_get_hdu_num(as_fits(handle_), &current);
  int status = 0;
  fits_movnam_hdu(as_fits(handle_), ANY_HDU, const_cast<char*>(name.c_str()), 0, &status);
  const bool found = status == 0;
  fits_clear_errmsg();
  status = 0;
  fits_movabs_hdu(as_fits(handle_), current, nullptr, &status);
  check(status, "fits_movabs_hdu", where(), Blame::user);
  return found;
}

int File::hdu_count() {
  int count = 0;
  int status = 0;
  fits_get_num_hdus(as_fits(handle_), &count, &status);
  check(status, "fits_get_num_hdus", path_, Blame::user);
  return count;
}

void File::move_to(int index) {
  if (index < 0 || index >= hdu_count()) {
    throw UsageError(fmt::format("{}: no HDU number {}", path_, index));
  }
  int status = 0;
  fits_movabs_hdu(as_fits(handle_), index + 1, nullptr, &status);
  check(status, "fits_movabs_hdu", fmt::format("{}[{}]", path_, index), Blame::user);
  refresh_hdu_name();
}

void File::move_to(const std::string& name) {
  int status = 0;
  fits_movnam_hdu(as_fits(handle_), ANY_HDU, const_cast<char*>(name.c_str()), 0, &status);
  if (status == BAD_HDU_NUM) {
    fits_clear_errmsg();
    throw UsageError(fmt::format("{}: no HDU {}", path_, name));
  }
  check(status, "fits_movnam_hdu", fmt::format("{}[{}]", path_, name), Blame::user);
  refresh_hdu_name();
}

std::optional<double> File::key_double(const std::string& name) {
  double value = 0.0;
  int status = 0;
  fits_read_key(as_fits(handle_), TDOUBLE, name.c_str(), &value, nullptr, &status);
  if (status == KEY_NO_EXIST) {
    fits_clear_errmsg();
    return std::nullopt;
  }
  check(status, "fits_read_key", where(name), Blame::user);
  return value;
}

std::optional<std::int64_t> File::key_int(const std::string& name) {
  LONGLONG value = 0;
  int status = 0;
  fits_read_key(as_fits(handle_), TLONGLONG, name.c_str(), &value, nullptr, &status);
  if (status == KEY_NO_EXIST) {
    fits_clear_errmsg();
    return std::nullopt;
  }
  check(status, "fits_read_key", where(name), Blame::user);
  return static_cast<std::int64_t>(value);
}

std::optional<std::string> File::key_string(const std::string& name) {
  char* value = nullptr;  // allocated by cfitsio: long strings continue over several cards
  int status = 0;
  fits_read_key_longstr(as_fits(handle_), name.c_str(), &value, nullptr, &status);
  if (status == KEY_NO_EXIST) {
    fits_clear_errmsg();
    return std::nullopt;
  }
  std::string out = value != nullptr ? value : "";
  if (value != nullptr) fits_free_memory(value, &status);
  check(status, "fits_read_key_longstr", where(name), Blame::user);
  return out;
}

double File::require_double(const std::string& name) {
  const std::optional<double> value = key_double(name);
  if (!value) throw UsageError(fmt::format("{}: header keyword {} is missing", where(), name));
  return *value;
}

std::string File::require_string(const std::string& name) {
  std::optional<std::string> value = key_string(name);
  if (!value) throw UsageError(fmt::format("{}: header keyword {} is missing", where(), name));
  return std::move(*value);
}

void File::write_key(const std::string& name, double value, const std::string& comment) {
  const std::string key = upper(name);
  int status = 0;
  // 17 significant digits: the value reads back as the same double.
  fits_update_key_dbl(as_fits(handle_), key.c_str(), value, -17, printable(comment).c_str(),
                      &status);
  check(status, "fits_update_key_dbl", where(key), Blame::system);
}

void File::write_key(const std::string& name, std::int64_t value, const std::string& comment) {
  const std::string key = upper(name);
  auto v = static_cast<LONGLONG>(value);
  int status = 0;
  fits_update_key(as_fits(handle_), TLONGLONG, key.c_str(), &v, printable(comment).c_str(),
                  &status);
  check(status, "fits_update_key", where(key), Blame::system);
}

void File::write_key(const std::string& name, const std::string& value,
                     const std::string& comment) {
  const std::string key = upper(name);
  const std::string text = printable(value);
  const std::string note = printable(comment);
  int status = 0;
  if (is_standard_keyword(key)) {
    // Long strings continue over several cards (the HEASARC long-string convention).
    fits_update_key_longstr(as_fits(handle_), key.c_str(), text.c_str(), note.c_str(), &status);
    check(status, "fits_update_key_longstr", where(key), Blame::system);
    return;
  }
  // cfitsio 4.2 drops characters when a long string follows HIERARCH: the cards are
  // written here instead.
  fits_delete_key(as_fits(handle_), key.c_str(), &status);
  if (status == KEY_NO_EXIST) {
    fits_clear_errmsg();
    status = 0;
  }
  check(status, "fits_delete_key", where(key), Blame::system);
  for (const std::string& card : hierarch_string_cards(key, text, note)) {
    fits_write_record(as_fits(handle_), card.c_str(), &status);
    check(status, "fits_write_record", where(key), Blame::system);
  }
}

void File::write_key(const std::string& name, bool value, const std::string& comment) {
  const std::string key = upper(name);
  int logical = value ? 1 : 0;
  int status = 0;
  fits_update_key(as_fits(handle_), TLOGICAL, key.c_str(), &logical, printable(comment).c_str(),
                  &status);
  check(status, "fits_update_key", where(key), Blame::system);
}

std::int64_t File::rows() {
  LONGLONG n = 0;
  int status = 0;
  fits_get_num_rowsll(as_fits(handle_), &n, &status);
  check(status, "fits_get_num_rows", where(), Blame::user);
  return static_cast<std::int64_t>(n);
}

int File::column_number(const std::string& name) {
  int number = 0;
  int status = 0;
  fits_get_colnum(as_fits(handle_), CASEINSEN, const_cast<char*>(name.c_str()), &number, &status);
  if (status == COL_NOT_FOUND) {
    fits_clear_errmsg();
    throw UsageError(fmt::format("{}: no column {}", where(), name));
  }
  check(status, "fits_get_colnum", where(name), Blame::user);
  return number;
}

bool File::has_column(const std::string& name) {
  int number = 0;
  int status = 0;
  fits_get_colnum(as_fits(handle_), CASEINSEN, const_cast<char*>(name.c_str()), &number, &status);
  fits_clear_errmsg();
  return status == 0;
}

std::string File::column_unit(const std::string& name) {
  const int number = column_number(name);
  const std::optional<std::string> unit = key_string(fmt::format("TUNIT{}", number));
  return unit.value_or("");
}

std::vector<std::int64_t> File::cell_dims(const std::string& name) {
  const int number = column_number(name);
  std::array<long, 8> dims{};
  int ndims = 0;
  int status = 0;
  fits_read_tdim(as_fits(handle_), number, static_cast<int>(dims.size()), &ndims, dims.data(),
                 &status);
  check(status, "fits_read_tdim", where(name), Blame::user);
  return {dims.begin(), dims.begin() + ndims};
}

std::int64_t File::cell_size(const std::string& name) {
  std::int64_t size = 1;
  for (const std::int64_t d : cell_dims(name)) size *= d;
  return size;
}

std::vector<double> File::read_doubles(const std::string& name, std::int64_t first,
                                       std::int64_t count) {
  const int number = column_number(name);
  const std::int64_t per_cell = cell_size(name);
  if (first < 0 || count < 0 || first + count > rows()) {
    throw UsageError(fmt::format("{}: rows [{}, {}) are outside the {} rows", where(name), first,
                                 first + count, rows()));
  }
  std::vector<double> out(static_cast<std::size_t>(count * per_cell));
  if (out.empty()) return out;
  int status = 0;
  int any_null = 0;
  fits_read_col(as_fits(handle_), TDOUBLE, number, static_cast<LONGLONG>(first) + 1, 1,
                static_cast<LONGLONG>(out.size()), nullptr, out.data(), &any_null, &status);
  check(status, "fits_read_col", where(name), Blame::user);
  return out;
}

std::vector<double> File::read_doubles(const std::string& name) {
  return read_doubles(name, 0, rows());
}

std::vector<std::int64_t> File::read_int64s(const std::string& name) {
  const int number = column_number(name);
  std::vector<LONGLONG> values(static_cast<std::size_t>(rows() * cell_size(name)));
  if (values.empty()) return {};
  int status = 0;
  int any_null = 0;
  fits_read_col(as_fits(handle_), TLONGLONG, number, 1, 1, static_cast<LONGLONG>(values.size()),
                nullptr, values.data(), &any_null, &status);
  check(status, "fits_read_col", where(name), Blame::user);
  return {values.begin(), values.end()};
}

std::vector<std::string> File::read_strings(const std::string& name) {
  const int number = column_number(name);
  int type = 0;
  long repeat = 0;
  long width = 0;
  int status = 0;
  fits_get_eqcoltype(as_fits(handle_), number, &type, &repeat, &width, &status);
  check(status, "fits_get_eqcoltype", where(name), Blame::user);
  if (type != TSTRING) throw UsageError(fmt::format("{}: is not a text column", where(name)));
  const std::int64_t n = rows();
  std::vector<std::string> out;
  out.reserve(static_cast<std::size_t>(n));
  std::vector<char> cell(static_cast<std::size_t>(repeat) + 1);
  for (std::int64_t row = 0; row < n; ++row) {
    char* pointer = cell.data();
    int any_null = 0;
    fits_read_col(as_fits(handle_), TSTRING, number, static_cast<LONGLONG>(row) + 1, 1, 1, nullptr,
                  static_cast<void*>(&pointer), &any_null, &status);
    check(status, "fits_read_col", where(name), Blame::user);
    // Trailing blanks are not significant in FITS text (cfitsio gives " " for "").
    std::string text = cell.data();
    text.erase(text.find_last_not_of(' ') + 1);
    out.push_back(std::move(text));
  }
  return out;
}

std::vector<bool> File::read_logicals(const std::string& name) {
  const int number = column_number(name);
  std::vector<char> cells(static_cast<std::size_t>(rows() * cell_size(name)));
  if (cells.empty()) return {};
  int status = 0;
  int any_null = 0;
  char undefined = 0;
  fits_read_col(as_fits(handle_), TLOGICAL, number, 1, 1, static_cast<LONGLONG>(cells.size()),
                &undefined, cells.data(), &any_null, &status);
  check(status, "fits_read_col", where(name), Blame::user);
  std::vector<bool> out;
  out.reserve(cells.size());
  for (const char c : cells) out.push_back(c != 0);
  return out;
}

void File::create_table(const std::string& extname, const std::vector<ColumnSpec>& columns,
                        std::int64_t rows) {
  std::vector<char*> names;
  std::vector<char*> formats;
  std::vector<char*> units;
  for (const ColumnSpec& c : columns) {
    names.push_back(const_cast<char*>(c.name.c_str()));
    formats.push_back(const_cast<char*>(c.format.c_str()));
    units.push_back(const_cast<char*>(c.unit.c_str()));
  }
  int status = 0;
  fits_create_tbl(as_fits(handle_), BINARY_TBL, static_cast<LONGLONG>(rows),
                  static_cast<int>(columns.size()), names.data(), formats.data(), units.data(),
                  extname.c_str(), &status);
  check(status, "fits_create_tbl", fmt::format("{}[{}]", path_, extname), Blame::system);
  hdu_ = extname;
  for (std::size_t i = 0; i < columns.size(); ++i) {
    const ColumnSpec& c = columns[i];
    const int number = static_cast<int>(i) + 1;
    if (!c.dims.empty()) {
      std::vector<long> dims(c.dims.begin(), c.dims.end());
      fits_write_tdim(as_fits(handle_), number, static_cast<int>(dims.size()), dims.data(),
                      &status);
      check(status, "fits_write_tdim", where(c.name), Blame::system);
    }
    if (!c.comment.empty()) {
      const std::string card = fmt::format("TTYPE{}", number);
      fits_modify_comment(as_fits(handle_), card.c_str(), printable(c.comment).c_str(), &status);
      check(status, "fits_modify_comment", where(card), Blame::system);
    }
  }
}

void File::write_column(const std::string& name, const std::vector<double>& values) {
  const int number = column_number(name);
  int status = 0;
  fits_write_col(as_fits(handle_), TDOUBLE, number, 1, 1, static_cast<LONGLONG>(values.size()),
                 const_cast<double*>(values.data()), &status);
  check(status, "fits_write_col", where(name), Blame::system);
}

void File::write_column(const std::string& name, const std::vector<std::int64_t>& values) {
  const int number = column_number(name);
  std::vector<LONGLONG> cells(values.begin(), values.end());
  int status = 0;
  fits_write_col(as_fits(handle_), TLONGLONG, number, 1, 1, static_cast<LONGLONG>(cells.size()),
                 cells.data(), &status);
  check(status, "fits_write_col", where(name), Blame::system);
}

void File::write_column(const std::string& name, const std::vector<std::string>& values) {
  const int number = column_number(name);
  std::vector<char*> cells;
  cells.reserve(values.size());
  for (const std::string& v : values) cells.push_back(const_cast<char*>(v.c_str()));
  int status = 0;
  fits_write_col(as_fits(handle_), TSTRING, number, 1, 1, static_cast<LONGLONG>(cells.size()),
                 static_cast<void*>(cells.data()), &status);
  check(status, "fits_write_col", where(name), Blame::system);
}

void File::write_tdim(const std::string& name, const std::vector<std::int64_t>& dims) {
  const int number = column_number(name);
  std::vector<long> axes(dims.begin(), dims.end());
  int status = 0;
  fits_write_tdim(as_fits(handle_), number, static_cast<int>(axes.size()), axes.data(), &status);
  check(status, "fits_write_tdim", where(name), Blame::system);
}

void File::write_logicals(const std::string& name, const std::vector<bool>& values) {
  const int number = column_number(name);
  std::vector<char> cells;
  cells.reserve(values.size());
  for (const bool v : values) cells.push_back(v ? 1 : 0);
  int status = 0;
  fits_write_col(as_fits(handle_), TLOGICAL, number, 1, 1, static_cast<LONGLONG>(cells.size()),
                 cells.data(), &status);
  check(status, "fits_write_col", where(name), Blame::system);
}

}  // namespace binflow::fits
