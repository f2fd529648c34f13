#pragma once
// FITS files through cfitsio, wrapped once as HDF5 is (binflow/h5.hpp): a move-only owner of
// the open file, every cfitsio call checked on the line that makes it, and the cfitsio
// error stack folded into one message that names the file, the HDU and the column or
// keyword. The domain's formats (GADF DL3 input, GADF result tables) build on this; cfitsio
// itself stays out of this header.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace binflow::fits {

/// Whether `path` starts with a FITS primary header ("SIMPLE  =") or is gzip-compressed
/// (cfitsio reads .fits.gz transparently). Reads 9 bytes; false for unreadable files.
[[nodiscard]] bool has_fits_signature(const std::string& path);

/// One column of a binary table to create: name, TFORM ("D", "K", "L", "16A", "20D"...),
/// TUNIT (empty: none), TDIM of an array cell (fastest axis first; empty: none, so "D" is a
/// scalar while "D" with dims {1} is an array of one element, which Gammapy's flux-point
/// readers tell apart), and the comment of the TTYPE card (a one-line description).
struct ColumnSpec {
  std::string name;
  std::string format;
  std::string unit;
  std::vector<std::int64_t> dims = {};
  std::string comment = {};
};

/// An open FITS file and its current HDU. Not thread-safe. Errors: UsageError for what the
/// user fixes (not a FITS file, a missing HDU, column or keyword, a value of the wrong
/// type), IoError for the file system and cfitsio failing to write.
class File {
public:
  /// Opens `path` read-only at its primary HDU.
  static File open(const std::string& path);
  /// Creates `path` (which must not exist; taken literally, not as cfitsio's extended
  /// file-name syntax) with an empty primary HDU, for writing. A name ending in .gz is
  /// gzip-compressed by close().
  static File create(const std::string& path);

  File(File&& other) noexcept;
  File& operator=(File&& other) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  /// Closes without throwing (a failure is lost: call close() to see it).
  ~File();
  /// Closes and flushes (and compresses a created *.gz file); IoError if that fails.
  void close();

  [[nodiscard]] const std::string& path() const { return path_; }

  // --- HDUs ----------------------------------------------------------------------------
  /// Whether an extension with EXTNAME `name` (case-insensitive) exists.
  [[nodiscard]] bool has_hdu(const std::string& name);
  /// Makes the extension `name` current; UsageError "file: no HDU NAME" otherwise.
  void move_to(const std::string& name);
  /// Number of HDUs, the primary one included.
  [[nodiscard]] int hdu_count();
  /// Makes HDU `index` current (0 is the primary HDU); UsageError if there is none.
  void move_to(int index);
  /// EXTNAME of the current HDU ("PRIMARY" for the primary one).
  [[nodiscard]] const std::string& hdu() const { return hdu_; }

  // --- header keywords of the current HDU ----------------------------------------------
  [[nodiscard]] std::optional<double> key_double(const std::string& name);
  [[nodiscard]] std::optional<std::int64_t> key_int(const std::string& name);
  [[nodiscard]] std::optional<std::string> key_string(const std::string& name);
  /// As key_double, but UsageError naming file, HDU and keyword when it is missing.
  [[nodiscard]] double require_double(const std::string& name);
  [[nodiscard]] std::string require_string(const std::string& name);
  /// Keyword names are written in upper case; a name longer than 8 characters or with
  /// characters outside A-Z 0-9 _ - becomes a HIERARCH keyword (ESO convention, which
  /// cfitsio and astropy read). Doubles are written with 17 significant digits (they read
  /// back as the same double). Strings longer than one card continue over CONTINUE cards
  /// (the HEASARC long-string convention, also after HIERARCH, where cfitsio's own writer
  /// cuts them); bytes outside printable ASCII, which a header cannot hold, become '?'.
  void write_key(const std::string& name, double value, const std::string& comment = {});
  void write_key(const std::string& name, std::int64_t value, const std::string& comment = {});
  void write_key(const std::string& name, const std::string& value,
                 const std::string& comment = {});
  void write_key(const std::string& name, bool value, const std::string& comment = {});

  // --- binary tables (current HDU) -----------------------------------------------------
  [[nodiscard]] std::int64_t rows();
  [[nodiscard]] bool has_column(const std::string& name);
  /// Position of column `name` in the table, from 1 (its n in TTYPEn); UsageError if absent.
  [[nodiscard]] int column_position(const std::string& name) { return column_number(name); }
  /// TUNITn of column `name` ("" when absent); UsageError if the column is missing.
  [[nodiscard]] std::string column_unit(const std::string& name);
  /// Elements per cell (1 for scalar columns; the product of TDIMn for array cells).
  [[nodiscard]] std::int64_t cell_size(const std::string& name);
  /// TDIMn of an array column, fastest axis first (one element for a scalar column).
  [[nodiscard]] std::vector<std::int64_t> cell_dims(const std::string& name);
  /// `count` cells from row `first` (0-based) of a numeric column, converted to double;
  /// array cells are concatenated. UsageError naming file, HDU and column on any problem.
  [[nodiscard]] std::vector<double> read_doubles(const std::string& name, std::int64_t first,
                                                 std::int64_t count);
  /// The whole column.
  [[nodiscard]] std::vector<double> read_doubles(const std::string& name);
  [[nodiscard]] std::vector<std::int64_t> read_int64s(const std::string& name);
  [[nodiscard]] std::vector<std::string> read_strings(const std::string& name);
  /// A logical column (TFORM "L"; array cells concatenated); an undefined value reads false.
  [[nodiscard]] std::vector<bool> read_logicals(const std::string& name);

  /// Appends a binary-table extension `extname` with `rows` rows and makes it current
  /// (TDIMn and TTYPEn comments as the specs say).
  void create_table(const std::string& extname, const std::vector<ColumnSpec>& columns,
                    std::int64_t rows);
  /// Writes the column from row 0 (values.size() elements: rows x cell size).
  void write_column(const std::string& name, const std::vector<double>& values);
  void write_column(const std::string& name, const std::vector<std::int64_t>& values);
  void write_column(const std::string& name, const std::vector<std::string>& values);
  /// Writes TDIMn of an array column (fastest axis first), e.g. {8, 4} for "(8,4)".
  void write_tdim(const std::string& name, const std::vector<std::int64_t>& dims);
  /// A logical column (TFORM "L").
  void write_logicals(const std::string& name, const std::vector<bool>& values);

private:
  File(void* handle, std::string path) : handle_(handle), path_(std::move(path)) {}
  int column_number(const std::string& name);
  void refresh_hdu_name();
  [[nodiscard]] std::string where() const;
  [[nodiscard]] std::string where(const std::string& item) const;

  void* handle_ = nullptr;  // fitsfile*
  std::string path_;
  std::string hdu_ = "PRIMARY";
  bool gzip_ = false;  // created with a .gz name: compressed by close()
};

}  // namespace binflow::fits
