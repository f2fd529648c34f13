#pragma once
// Thin, checked, move-only access to HDF5: files, groups, 1-D datasets and attributes.
// HDF5's own error printing is switched off once; its error stack is folded into the
// exception text instead.
#include <hdf5.h>

#include <cstdint>
#include <source_location>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "binflow/runtime.hpp"

namespace binflow::h5 {

/// Throws IoError naming the call, the object and the HDF5 error stack if id < 0;
/// returns id otherwise. Also used for herr_t results.
hid_t check_h5(hid_t id, std::string_view call, std::string_view object,
               std::source_location where = std::source_location::current());

/// Move-only owner of an hid_t with its matching close function.
class Handle {
public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  Handle(Handle&& other) noexcept;
  Handle& operator=(Handle&& other) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle();  ///< closes; never throws (a failure is logged)
  [[nodiscard]] hid_t get() const { return id_; }
  [[nodiscard]] bool valid() const { return id_ >= 0; }
  void close();  ///< closes and throws IoError on failure
  /// Gives up ownership without closing and returns the id (for an object whose close is
  /// collective and must not be attempted by one rank alone while unwinding).
  [[nodiscard]] hid_t release() noexcept;

private:
  hid_t id_ = H5I_INVALID_HID;
  Closer closer_ = nullptr;
};

/// What a dataset holds, as far as binflow's readers care.
enum class DataKind { real, integer, text, other };

/// A file or group location with the path used in messages ("out.h5:/results").
class Location {
public:
  Location(Handle handle, std::string name) : handle_(std::move(handle)), name_(std::move(name)) {}
  [[nodiscard]] hid_t id() const { return handle_.get(); }
  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] bool has(const std::string& path) const;
  [[nodiscard]] Location create_group(const std::string& path) const;
  [[nodiscard]] Location open_group(const std::string& path) const;
  /// Any object (a dataset, to read its attributes); IoError if there is none.
  [[nodiscard]] Location open_object(const std::string& path) const;
  void close() { handle_.close(); }
  /// Gives up the handle without closing it (see Handle::release): an MPI-IO file that a
  /// rank abandons while unwinding alone, where a collective close would block.
  void abandon() noexcept { static_cast<void>(handle_.release()); }

  // Attributes on this location.
  void write_attribute(const std::string& name, std::string_view value) const;
  void write_attribute(const std::string& name, double value) const;
  void write_attribute(const std::string& name, std::int64_t value) const;
  [[nodiscard]] bool has_attribute(const std::string& name) const;
  [[nodiscard]] std::string read_string_attribute(const std::string& name) const;
  [[nodiscard]] double read_double_attribute(const std::string& name) const;
  [[nodiscard]] std::int64_t read_int_attribute(const std::string& name) const;
  /// A scalar text or numeric attribute as text (numbers in shortest round-trip form).
  [[nodiscard]] std::string read_attribute_text(const std::string& name) const;
  /// Names of this group's attributes and of its members (datasets, groups), in the order
  /// they were made where the group records it (every group binflow makes), else by name.
  [[nodiscard]] std::vector<std::string> attribute_names() const;
  [[nodiscard]] std::vector<std::string> children() const;
  /// The kind of values of the dataset `name` (a member of this location).
  [[nodiscard]] DataKind kind_of(const std::string& name) const;

  // Whole 1-D datasets (serial, or independent I/O on an MPI-IO file). `unit` and
  // `description`, when not empty, become string attributes of the dataset. On an MPI-IO file
  // every rank makes the same write and attribute calls (creating objects is collective), and
  // strings are stored fixed-length, since HDF5 1.10 cannot write variable-length data there.
  // Children (groups) must be closed before their file, as the MPI-IO driver requires; serial
  // files follow the same rule.
  void write(const std::string& name, std::span<const double> values, std::string_view unit = {},
             std::string_view description = {}) const;
  void write(const std::string& name, std::span<const std::int64_t> values,
             std::string_view unit = {}, std::string_view description = {}) const;
  void write(const std::string& name, std::span<const std::string> values,
             std::string_view unit = {}, std::string_view description = {}) const;
  [[nodiscard]] std::vector<double> read_doubles(const std::string& name) const;
  [[nodiscard]] std::vector<std::int64_t> read_ints(const std::string& name) const;
  [[nodiscard]] std::vector<std::string> read_strings(const std::string& name) const;
  /// Number of elements of a 1-D dataset.
  [[nodiscard]] std::int64_t extent(const std::string& name) const;

  // Parts of 1-D datasets (hyperslabs), so that a slice of a large dataset is read or
  // written without touching the rest of the file.
  /// Elements [offset, offset + count) of a 1-D numeric dataset. Independent I/O: on an
  /// MPI-IO file any rank may call it alone. IoError naming the dataset if the range is
  /// not inside it.
  [[nodiscard]] std::vector<double> read_doubles(const std::string& name, std::int64_t offset,
                                                 std::int64_t count) const;
  /// Creates (replacing) a 1-D f64 dataset of `size` elements in chunks of `chunk`
  /// elements (clamped to [1, size]), for write_slab to fill; no fill values are written.
  /// On an MPI-IO file collective: every rank calls it with the same arguments.
  void create_doubles(const std::string& name, std::int64_t size, std::int64_t chunk = 65536,
                      std::string_view unit = {}, std::string_view description = {}) const;
  /// Writes `values` to elements [offset, offset + values.size()) of a 1-D f64 dataset. On an
  /// MPI-IO file collective (H5FD_MPIO_COLLECTIVE): every rank calls it once per round, each
  /// with its own range, which may be empty; ranges must not overlap. On a serial file a
  /// plain write. IoError naming the dataset if the range is not inside it.
  void write_slab(const std::string& name, std::int64_t offset,
                  std::span<const double> values) const;

private:
  Handle handle_;
  std::string name_;
};

/// An open 1-D numeric dataset for many partial reads, read as doubles. Opening a dataset
/// per read (a binary search's probes, say) costs more than the read itself. HDF5's chunk
/// cache for this dataset holds `cache_bytes` (0: none, and partial reads of an
/// uncompressed chunk fetch only the selected elements). Not thread-safe.
class DoubleColumn {
public:
  /// IoError naming the dataset if it is missing, not 1-D or not numeric.
  DoubleColumn(const Location& location, const std::string& name, std::size_t cache_bytes);
  [[nodiscard]] std::int64_t size() const { return size_; }
  /// Elements [offset, offset + count); IoError if outside the dataset.
  [[nodiscard]] std::vector<double> read(std::int64_t offset, std::int64_t count) const;
  /// The same into `out` (out.size() elements from `offset`), which it overwrites: a caller
  /// that reuses a buffer pays no zero-fill.
  void read_into(std::int64_t offset, std::span<double> out) const;
  /// Elements 0, stride, 2 stride, ... (every one below size()) in one read.
  [[nodiscard]] std::vector<double> read_every(std::int64_t stride) const;
  [[nodiscard]] const std::string& label() const { return label_; }

private:
  Handle dataset_;
  std::string label_;
  std::int64_t size_ = 0;
};

/// Creates `path` (truncating) for serial access by one process.
Location create_file(const std::string& path);
/// Opens `path` read-only for serial access; IoError naming the path if it cannot.
Location open_file(const std::string& path);
/// Collective over comm: creates `path` (truncating) through MPI-IO.
Location create_file_parallel(const std::string& path, const Communicator& comm);
/// Collective over comm: opens `path` read-only through MPI-IO.
Location open_file_parallel(const std::string& path, const Communicator& comm);

}  // namespace binflow::h5
