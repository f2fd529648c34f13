#include "binflow/h5.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <new>
#include <system_error>
#include <utility>

#include <fmt/format.h>

#include "binflow/error.hpp"
#include "binflow/file_checks.hpp"
#include "binflow/runtime.hpp"
#include "memory.hpp"

namespace binflow::h5 {
namespace {

// Chunks of 64k elements (512 KiB of doubles) let a reader take a time slice of an event
// list as a hyperslab without touching the rest of the file (SCIENCE.md section 1).
constexpr hsize_t max_chunk = 65536;

// HDF5 prints its whole error stack to stderr by default; binflow reports the stack once,
// folded into the exception text. Parallel HDF5 is not built thread-safe, so only one
// thread ever calls it and one global switch suffices.
void silence_hdf5() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr) < 0) {
      std::fputs("binflow: warning: could not switch off HDF5's error printing\n", stderr);
    }
  });
}

struct StackEnds {
  std::string outer;  // the API call's own description
  std::string inner;  // where the failure was first detected: usually the real reason
};

herr_t collect_stack_ends(unsigned depth, const H5E_error2_t* entry, void* data) noexcept {
  try {
    auto& ends = *static_cast<StackEnds*>(data);
    const char* text =
        entry->desc != nullptr && *entry->desc != '\0' ? entry->desc : entry->func_name;
    if (text == nullptr) return 0;
    if (depth == 0) ends.outer = text;
    ends.inner = text;
    return 0;
  } catch (...) {
    return -1;
  }
}

// The file drivers describe a failed system call over several lines, with a time stamp and
// buffer addresses ("file write failed: time = ...\n, filename = ..., errno = 28, error
// message = 'No space left on device', buf = 0x..."): a message is one line, so keep the
// failure and the system's words ("file write failed: No space left on device").
std::string one_line(std::string text) {
  constexpr std::string_view key = "error message = '";
  if (const auto at = text.find(key); at != std::string::npos) {
    const auto from = at + key.size();
    const auto to = text.find('\'', from);
    const auto colon = text.find(':');
    if (to != std::string::npos && colon != std::string::npos && colon < at) {
      text = fmt::format("{}: {}", text.substr(0, colon), text.substr(from, to - from));
    }
  }
  std::replace(text.begin(), text.end(), '\n', ' ');
  return text;
}

// "unable to open file (file signature not found)": outermost and innermost descriptions of
// the current error stack, which is then cleared. Unchecked for the same reason as id_name().
std::string error_stack_text() {
  StackEnds ends;
  if (H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect_stack_ends, &ends) < 0 ||
      ends.outer.empty()) {
    ends.outer = "no message on the HDF5 error stack";
    ends.inner.clear();
  }
  H5Eclear2(H5E_DEFAULT);
  if (ends.inner.empty() || ends.inner == ends.outer) return one_line(ends.outer);
  return fmt::format("{} ({})", one_line(ends.outer), one_line(ends.inner));
}

std::string_view base_name(std::string_view path) {
  const auto slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

const char* closer_name(Handle::Closer closer) {
  if (closer == &H5Fclose) return "H5Fclose";
  if (closer == &H5Gclose) return "H5Gclose";
  if (closer == &H5Dclose) return "H5Dclose";
  if (closer == &H5Aclose) return "H5Aclose";
  if (closer == &H5Sclose) return "H5Sclose";
  if (closer == &H5Tclose) return "H5Tclose";
  if (closer == &H5Pclose) return "H5Pclose";
  if (closer == &H5Oclose) return "H5Oclose";
  return "HDF5 close";
}

// Name of an open object for messages: the file name for files, the in-file path for
// groups and datasets. The calls here (and in child_name) are deliberately unchecked: they only
// build message text, and an exception from them would replace the error being reported.
std::string id_name(hid_t id) {
  const H5I_type_t type = H5Iget_type(id);
  const bool is_file = type == H5I_FILE;
  const ssize_t length = is_file ? H5Fget_name(id, nullptr, 0) : H5Iget_name(id, nullptr, 0);
  if (length <= 0) return fmt::format("HDF5 object {}", id);
  std::string name(static_cast<std::size_t>(length) + 1, '\0');
  const ssize_t got = is_file ? H5Fget_name(id, name.data(), name.size())
                              : H5Iget_name(id, name.data(), name.size());
  name.resize(got > 0 ? static_cast<std::size_t>(got) : 0);
  return name;
}

// "out.h5:/results/flux" for `path` relative to (or absolute in) the file of `loc`.
std::string child_name(const Location& loc, std::string_view path) {
  if (path.starts_with('/')) {
    const hid_t file = H5Iget_file_id(loc.id());
    if (file < 0) return fmt::format("{}:{}", loc.name(), path);
    Handle owner(file, H5Fclose);
    return fmt::format("{}:{}", id_name(file), path);
  }
  if (H5Iget_type(loc.id()) == H5I_FILE) return fmt::format("{}:/{}", loc.name(), path);
  return fmt::format("{}/{}", loc.name(), path);
}

std::string attribute_label(std::string_view object, std::string_view attribute) {
  return fmt::format("{} attribute '{}'", object, attribute);
}

Handle make_plist(hid_t cls, const std::string& label) {
  return {check_h5(H5Pcreate(cls), "H5Pcreate", label), H5Pclose};
}

// Link creation that makes missing parent groups, so write("a/b/x") works like mkdir -p.
Handle intermediate_groups_lcpl(const std::string& label) {
  Handle lcpl = make_plist(H5P_LINK_CREATE, label);
  check_h5(H5Pset_create_intermediate_group(lcpl.get(), 1), "H5Pset_create_intermediate_group",
           label);
  return lcpl;
}

Handle string_type(H5T_cset_t cset, std::size_t size, H5T_str_t pad, const std::string& label) {
  Handle type(check_h5(H5Tcopy(H5T_C_S1), "H5Tcopy", label), H5Tclose);
  check_h5(H5Tset_size(type.get(), size), "H5Tset_size", label);
  check_h5(H5Tset_cset(type.get(), cset), "H5Tset_cset", label);
  check_h5(H5Tset_strpad(type.get(), pad), "H5Tset_strpad", label);
  return type;
}

Handle utf8_vlen_type(const std::string& label) {
  return string_type(H5T_CSET_UTF8, H5T_VARIABLE, H5T_STR_NULLTERM, label);
}

std::string_view class_name(H5T_class_t cls) {
  switch (cls) {
    case H5T_INTEGER:
      return "integer";
    case H5T_FLOAT:
      return "floating-point";
    case H5T_STRING:
      return "string";
    case H5T_COMPOUND:
      return "compound";
    case H5T_ENUM:
      return "enum";
    case H5T_ARRAY:
      return "array";
    default:
      return "non-numeric";
  }
}

// Element type of a dataset or attribute, checked against what the caller will read.
Handle checked_type(hid_t type_id, std::string_view call,
                    std::initializer_list<H5T_class_t> accepted, std::string_view expected,
                    const std::string& label) {
  Handle type(check_h5(type_id, call, label), H5Tclose);
  const H5T_class_t cls = H5Tget_class(type.get());
  check_h5(cls, "H5Tget_class", label);
  if (std::find(accepted.begin(), accepted.end(), cls) == accepted.end()) {
    throw IoError(fmt::format("{} holds {} values, expected {}", label, class_name(cls), expected));
  }
  return type;
}

// Strings of a dataset or attribute whose file type is `file_type`, in either of HDF5's
// layouts: variable-length (binflow, h5py's str) or fixed-length (numpy bytes, FITS converts).
template <typename ReadFn>
std::vector<std::string> read_string_values(hid_t file_type, hid_t space, std::size_t n,
                                            ReadFn read, const std::string& label) {
  const H5T_cset_t cset = H5Tget_cset(file_type);
  check_h5(cset, "H5Tget_cset", label);
  std::vector<std::string> out(n);
  if (n == 0) return out;
  if (check_h5(H5Tis_variable_str(file_type), "H5Tis_variable_str", label) > 0) {
    const Handle mem = string_type(cset, H5T_VARIABLE, H5T_STR_NULLTERM, label);
    std::vector<char*> pointers(n, nullptr);
    read(mem.get(), static_cast<void*>(pointers.data()));
    for (std::size_t i = 0; i < n; ++i) {
      if (pointers[i] != nullptr) out[i] = pointers[i];
    }
    check_h5(H5Dvlen_reclaim(mem.get(), space, H5P_DEFAULT, static_cast<void*>(pointers.data())),
             "H5Dvlen_reclaim", label);
    return out;
  }
  const std::size_t size = H5Tget_size(file_type);
  if (size == 0) check_h5(-1, "H5Tget_size", label);
  const H5T_str_t pad = H5Tget_strpad(file_type);
  check_h5(pad, "H5Tget_strpad", label);
  const Handle mem = string_type(cset, size, pad, label);
  std::string buffer(n * size, '\0');
  read(mem.get(), buffer.data());
  for (std::size_t i = 0; i < n; ++i) {
    std::string value = buffer.substr(i * size, size);
    // find_last_not_of gives npos + 1 = 0 for all blanks; find gives npos for a full field.
    value.resize(pad == H5T_STR_SPACEPAD ? value.find_last_not_of(' ') + 1
                                         : std::min(value.find('\0'), value.size()));
    out[i] = std::move(value);
  }
  return out;
}

// True if the file holding `object` was opened through the MPI-IO driver.
bool uses_mpio(hid_t object, const std::string& label) {
  const Handle file(check_h5(H5Iget_file_id(object), "H5Iget_file_id", label), H5Fclose);
  const Handle fapl(check_h5(H5Fget_access_plist(file.get()), "H5Fget_access_plist", label),
                    H5Pclose);
  return check_h5(H5Pget_driver(fapl.get()), "H5Pget_driver", label) == H5FD_MPIO;
}

// ---- attributes on any object ----

void delete_attribute_if_present(hid_t object, const std::string& name, const std::string& label) {
  if (check_h5(H5Aexists(object, name.c_str()), "H5Aexists", label) > 0) {
    check_h5(H5Adelete(object, name.c_str()), "H5Adelete", label);
  }
}

void write_scalar_attribute(hid_t object, const std::string& name, hid_t file_type, hid_t mem_type,
                            const void* value, const std::string& object_label) {
  const std::string label = attribute_label(object_label, name);
  delete_attribute_if_present(object, name, label);
  const Handle space(check_h5(H5Screate(H5S_SCALAR), "H5Screate", label), H5Sclose);
  Handle attr(
      check_h5(H5Acreate2(object, name.c_str(), file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT),
               "H5Acreate2", label),
      H5Aclose);
  check_h5(H5Awrite(attr.get(), mem_type, value), "H5Awrite", label);
  attr.close();
}

void write_string_attribute(hid_t object, const std::string& name, std::string_view value,
                            const std::string& object_label) {
  const Handle type = utf8_vlen_type(attribute_label(object_label, name));
  const std::string text(value);  // H5Awrite needs a terminated C string
  const char* pointer = text.c_str();
  write_scalar_attribute(object, name, type.get(), type.get(), static_cast<const void*>(&pointer),
                         object_label);
}

Handle open_attribute(hid_t object, const std::string& name, const std::string& object_label) {
  const std::string label = attribute_label(object_label, name);
  if (check_h5(H5Aexists(object, name.c_str()), "H5Aexists", label) == 0) {
    throw IoError(fmt::format("{} has no attribute '{}'", object_label, name));
  }
  Handle attr(check_h5(H5Aopen(object, name.c_str(), H5P_DEFAULT), "H5Aopen", label), H5Aclose);
  const Handle space(check_h5(H5Aget_space(attr.get()), "H5Aget_space", label), H5Sclose);
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  check_h5(n, "H5Sget_simple_extent_npoints", label);
  if (n != 1) throw IoError(fmt::format("{} has {} values, expected one", label, n));
  return attr;
}

template <typename T>
T read_scalar_attribute(hid_t object, const std::string& name, hid_t mem_type,
                        std::initializer_list<H5T_class_t> accepted, std::string_view expected,
                        const std::string& object_label) {
  const std::string label = attribute_label(object_label, name);
  const Handle attr = open_attribute(object, name, object_label);
  checked_type(H5Aget_type(attr.get()), "H5Aget_type", accepted, expected, label);
  T value{};
  check_h5(H5Aread(attr.get(), mem_type, &value), "H5Aread", label);
  return value;
}

// ---- datasets ----

void write_dataset(const Location& loc, const std::string& name, hid_t file_type, hid_t mem_type,
                   const void* data, std::size_t n, std::string_view unit,
                   std::string_view description) {
  const std::string label = child_name(loc, name);
  if (loc.has(name)) check_h5(H5Ldelete(loc.id(), name.c_str(), H5P_DEFAULT), "H5Ldelete", label);
  // Unlimited maxdims make a chunked zero-length dataset legal (a chunk may not exceed a
  // fixed maximum of 0) and cost nothing for a dataset that is never extended.
  const hsize_t dims = n;
  const hsize_t maxdims = H5S_UNLIMITED;
  const Handle space(check_h5(H5Screate_simple(1, &dims, &maxdims), "H5Screate_simple", label),
                     H5Sclose);
  const Handle dcpl = make_plist(H5P_DATASET_CREATE, label);
  const hsize_t chunk = std::clamp<hsize_t>(n, 1, max_chunk);
  check_h5(H5Pset_chunk(dcpl.get(), 1, &chunk), "H5Pset_chunk", label);
  const Handle lcpl = intermediate_groups_lcpl(label);
  Handle dataset(check_h5(H5Dcreate2(loc.id(), name.c_str(), file_type, space.get(), lcpl.get(),
                                     dcpl.get(), H5P_DEFAULT),
                          "H5Dcreate2", label),
                 H5Dclose);
  if (n > 0) {
    check_h5(H5Dwrite(dataset.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), "H5Dwrite",
             label);
  }
  if (!unit.empty()) write_string_attribute(dataset.get(), "unit", unit, label);
  if (!description.empty()) {
    write_string_attribute(dataset.get(), "description", description, label);
  }
  dataset.close();
}

Handle open_dataset(const Location& loc, const std::string& name, const std::string& label) {
  if (!loc.has(name)) throw IoError(fmt::format("{}: no such dataset", label));
  return {check_h5(H5Dopen2(loc.id(), name.c_str(), H5P_DEFAULT), "H5Dopen2", label), H5Dclose};
}

std::size_t dataset_length(hid_t space, const std::string& label) {
  const int rank = H5Sget_simple_extent_ndims(space);
  check_h5(rank, "H5Sget_simple_extent_ndims", label);
  if (rank != 1) throw IoError(fmt::format("{} is not a 1-D dataset (rank {})", label, rank));
  hsize_t dims = 0;
  check_h5(H5Sget_simple_extent_dims(space, &dims, nullptr), "H5Sget_simple_extent_dims", label);
  return static_cast<std::size_t>(dims);
}

// A vector for a dataset of `n` elements, as its file claims: a claim beyond this machine's
// memory (a damaged or hostile header) is bad input naming the dataset, not std::bad_alloc (a
// bug's exit status) or the out-of-memory killer.
template <typename T>
std::vector<T> allocate_claimed(std::size_t n, const std::string& label) {
  const double memory = detail::physical_memory_bytes();
  const double bytes = static_cast<double>(n) * static_cast<double>(sizeof(T));
  const auto fail = [&] {
    return UsageError(fmt::format("{}: claims {} elements ({:.3g} GiB), more than this machine "
                                  "can hold ({:.3g} GiB)",
                                  label, n, bytes / 0x1p30, memory / 0x1p30));
  };
  if (memory > 0.0 && bytes > memory) throw fail();
  try {
    return std::vector<T>(n);
  } catch (const std::bad_alloc&) {
    throw fail();
  }
}

template <typename T>
std::vector<T> read_numbers(const Location& loc, const std::string& name, hid_t mem_type,
                            std::initializer_list<H5T_class_t> accepted,
                            std::string_view expected) {
  const std::string label = child_name(loc, name);
  const Handle dataset = open_dataset(loc, name, label);
  checked_type(H5Dget_type(dataset.get()), "H5Dget_type", accepted, expected, label);
  const Handle space(check_h5(H5Dget_space(dataset.get()), "H5Dget_space", label), H5Sclose);
  std::vector<T> values = allocate_claimed<T>(dataset_length(space.get(), label), label);
  if (!values.empty()) {
    check_h5(H5Dread(dataset.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()),
             "H5Dread", label);
  }
  return values;
}

// ---- files ----

bool exists_here(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

IoError missing_file(const std::string& path) {
  return IoError(fmt::format("{}: cannot open HDF5 file: it does not exist", path));
}

// The MPI-IO driver only supports H5F_CLOSE_SEMI (closing a file that still has open groups or
// datasets fails); serial files get the same rule, so a run on a laptop fails where a run under
// mpirun would, instead of sec2's default of silently deferring the close.
Handle file_access(const std::string& path) {
  Handle fapl = make_plist(H5P_FILE_ACCESS, path);
  check_h5(H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_SEMI), "H5Pset_fclose_degree", path);
  return fapl;
}

Handle mpio_access(MPI_Comm comm, const std::string& path) {
  Handle fapl = file_access(path);
  check_h5(H5Pset_fapl_mpio(fapl.get(), comm, MPI_INFO_NULL), "H5Pset_fapl_mpio", path);
  return fapl;
}

}  // namespace

hid_t check_h5(hid_t id, std::string_view call, std::string_view object,
               std::source_location where) {
  if (id >= 0) return id;
  silence_hdf5();
  throw IoError(fmt::format("{} failed on {}: {} ({}:{})", call, object, error_stack_text(),
                            base_name(where.file_name()), where.line()));
}

Handle::Handle(Handle&& other) noexcept
    : id_(std::exchange(other.id_, H5I_INVALID_HID)),
      closer_(std::exchange(other.closer_, nullptr)) {}

Handle& Handle::operator=(Handle&& other) noexcept {
  if (this != &other) {
    Handle previous(std::move(*this));  // released by its destructor, which never throws
    id_ = std::exchange(other.id_, H5I_INVALID_HID);
    closer_ = std::exchange(other.closer_, nullptr);
  }
  return *this;
}

Handle::~Handle() {
  if (!valid() || closer_ == nullptr) return;
  try {
    silence_hdf5();
    if (closer_(id_) >= 0) return;
    std::fprintf(stderr, "binflow: warning: %s failed in a destructor: %s\n", closer_name(closer_),
                 error_stack_text().c_str());
  } catch (...) {  // NOLINT(bugprone-empty-catch): a destructor has nowhere to report to
  }
}

hid_t Handle::release() noexcept {
  closer_ = nullptr;
  return std::exchange(id_, H5I_INVALID_HID);
}

void Handle::close() {
  if (!valid() || closer_ == nullptr) return;
  silence_hdf5();
  const std::string name = id_name(id_);
  // Released before the call: a failed close cannot be retried, and the destructor must
  // not try again.
  const hid_t id = std::exchange(id_, H5I_INVALID_HID);
  const Closer closer = std::exchange(closer_, nullptr);
  check_h5(closer(id), closer_name(closer), name);
}

bool Location::has(const std::string& path) const {
  // H5Lexists fails rather than answering "no" when a parent group is missing, so walk the
  // path one component at a time, and check that each parent is a group.
  std::string prefix = path.starts_with('/') ? "/" : "";
  std::size_t pos = prefix.size();
  while (pos < path.size()) {
    const std::size_t slash = std::min(path.find('/', pos), path.size());
    if (slash == pos) {
      ++pos;
      continue;
    }
    prefix.append(path, pos, slash - pos);
    pos = slash + 1;
    const std::string label = child_name(*this, prefix);
    if (check_h5(H5Lexists(id(), prefix.c_str(), H5P_DEFAULT), "H5Lexists", label) == 0 ||
        check_h5(H5Oexists_by_name(id(), prefix.c_str(), H5P_DEFAULT), "H5Oexists_by_name",
                 label) == 0) {
      return false;  // no such link, or a soft link to nothing
    }
    if (pos >= path.size()) break;
    H5O_info_t info{};
    check_h5(H5Oget_info_by_name2(id(), prefix.c_str(), &info, H5O_INFO_BASIC, H5P_DEFAULT),
             "H5Oget_info_by_name2", label);
    if (info.type != H5O_TYPE_GROUP) return false;
    prefix.push_back('/');
  }
  return true;
}

// Groups remember the order their links and attributes were made in, so that readers
// (binflow report) list columns and parameters as the tool declared them, not by name.
Location Location::create_group(const std::string& path) const {
  const std::string label = child_name(*this, path);
  const Handle lcpl = intermediate_groups_lcpl(label);
  const Handle gcpl = make_plist(H5P_GROUP_CREATE, label);
  constexpr unsigned order = H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED;
  check_h5(H5Pset_link_creation_order(gcpl.get(), order), "H5Pset_link_creation_order", label);
  check_h5(H5Pset_attr_creation_order(gcpl.get(), order), "H5Pset_attr_creation_order", label);
  Handle group(check_h5(H5Gcreate2(id(), path.c_str(), lcpl.get(), gcpl.get(), H5P_DEFAULT),
                        "H5Gcreate2", label),
               H5Gclose);
  return {std::move(group), label};
}

Location Location::open_group(const std::string& path) const {
  const std::string label = child_name(*this, path);
  if (!has(path)) throw IoError(fmt::format("{}: no such group", label));
  Handle group(check_h5(H5Gopen2(id(), path.c_str(), H5P_DEFAULT), "H5Gopen2", label), H5Gclose);
  return {std::move(group), label};
}

void Location::write_attribute(const std::string& name, std::string_view value) const {
  write_string_attribute(id(), name, value, name_);
}

void Location::write_attribute(const std::string& name, double value) const {
  write_scalar_attribute(id(), name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value, name_);
}

void Location::write_attribute(const std::string& name, std::int64_t value) const {
  write_scalar_attribute(id(), name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value, name_);
}

bool Location::has_attribute(const std::string& name) const {
  return check_h5(H5Aexists(id(), name.c_str()), "H5Aexists", attribute_label(name_, name)) > 0;
}

std::string Location::read_string_attribute(const std::string& name) const {
  const std::string label = attribute_label(name_, name);
  const Handle attr = open_attribute(id(), name, name_);
  const Handle type =
      checked_type(H5Aget_type(attr.get()), "H5Aget_type", {H5T_STRING}, "a string", label);
  const Handle space(check_h5(H5Aget_space(attr.get()), "H5Aget_space", label), H5Sclose);
  const auto read = [&](hid_t mem_type, void* buffer) {
    check_h5(H5Aread(attr.get(), mem_type, buffer), "H5Aread", label);
  };
  return read_string_values(type.get(), space.get(), 1, read, label).front();
}

namespace {

// Creation order where the group tracks it (groups binflow makes), else name order.
H5_index_t listing_order(hid_t group, const std::string& label, bool links) {
  const Handle gcpl(check_h5(H5Gget_create_plist(group), "H5Gget_create_plist", label), H5Pclose);
  unsigned flags = 0;
  if (links) {
    check_h5(H5Pget_link_creation_order(gcpl.get(), &flags), "H5Pget_link_creation_order", label);
  } else {
    check_h5(H5Pget_attr_creation_order(gcpl.get(), &flags), "H5Pget_attr_creation_order", label);
  }
  return (flags & H5P_CRT_ORDER_INDEXED) != 0 ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;
}

std::string name_by_index(hid_t group, H5_index_t order, hsize_t i, bool link,
                          const std::string& label) {
  const auto get = [&](char* buffer, std::size_t size) {
    return link ? H5Lget_name_by_idx(group, ".", order, H5_ITER_INC, i, buffer, size, H5P_DEFAULT)
                : H5Aget_name_by_idx(group, ".", order, H5_ITER_INC, i, buffer, size, H5P_DEFAULT);
  };
  const ssize_t size = check_h5(get(nullptr, 0), link ? "H5Lget_name_by_idx" : "H5Aget_name_by_idx",
                                label);
  std::string name(static_cast<std::size_t>(size) + 1, '\0');
  check_h5(get(name.data(), name.size()), link ? "H5Lget_name_by_idx" : "H5Aget_name_by_idx",
           label);
  name.resize(static_cast<std::size_t>(size));
  return name;
}

}  // namespace

Location Location::open_object(const std::string& path) const {
  const std::string label = child_name(*this, path);
  if (!has(path)) throw IoError(fmt::format("{}: no such object", label));
  Handle object(check_h5(H5Oopen(id(), path.c_str(), H5P_DEFAULT), "H5Oopen", label), H5Oclose);
  return {std::move(object), label};
}

std::vector<std::string> Location::children() const {
  H5G_info_t info{};
  check_h5(H5Gget_info(id(), &info), "H5Gget_info", name_);
  const H5_index_t order = listing_order(id(), name_, true);
  std::vector<std::string> out;
  out.reserve(info.nlinks);
  for (hsize_t i = 0; i < info.nlinks; ++i) out.push_back(name_by_index(id(), order, i, true, name_));
  return out;
}

std::vector<std::string> Location::attribute_names() const {
  H5O_info_t info{};
  check_h5(H5Oget_info2(id(), &info, H5O_INFO_NUM_ATTRS), "H5Oget_info2", name_);
  const H5_index_t order = listing_order(id(), name_, false);
  std::vector<std::string> out;
  out.reserve(info.num_attrs);
  for (hsize_t i = 0; i < info.num_attrs; ++i) {
    out.push_back(name_by_index(id(), order, i, false, name_));
  }
  return out;
}

std::string Location::read_attribute_text(const std::string& name) const {
  const std::string label = attribute_label(name_, name);
  const Handle attr = open_attribute(id(), name, name_);
  const Handle type(check_h5(H5Aget_type(attr.get()), "H5Aget_type", label), H5Tclose);
  switch (check_h5(H5Tget_class(type.get()), "H5Tget_class", label)) {
    case H5T_STRING:
      return read_string_attribute(name);
    case H5T_INTEGER:
      return fmt::format("{}", read_int_attribute(name));
    case H5T_FLOAT:
      return fmt::format("{}", read_double_attribute(name));
    default:
      throw IoError(fmt::format("{} is neither text nor a number", label));
  }
}

DataKind Location::kind_of(const std::string& name) const {
  const std::string label = child_name(*this, name);
  const Handle dataset = open_dataset(*this, name, label);
  const Handle type(check_h5(H5Dget_type(dataset.get()), "H5Dget_type", label), H5Tclose);
  switch (check_h5(H5Tget_class(type.get()), "H5Tget_class", label)) {
    case H5T_FLOAT:
      return DataKind::real;
    case H5T_INTEGER:
      return DataKind::integer;
    case H5T_STRING:
      return DataKind::text;
    default:
      return DataKind::other;
  }
}

double Location::read_double_attribute(const std::string& name) const {
  return read_scalar_attribute<double>(id(), name, H5T_NATIVE_DOUBLE, {H5T_FLOAT, H5T_INTEGER},
                                       "a number", name_);
}

std::int64_t Location::read_int_attribute(const std::string& name) const {
  return read_scalar_attribute<std::int64_t>(id(), name, H5T_NATIVE_INT64, {H5T_INTEGER},
                                             "an integer", name_);
}

void Location::write(const std::string& name, std::span<const double> values, std::string_view unit,
                     std::string_view description) const {
  write_dataset(*this, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, values.data(), values.size(), unit,
                description);
}

void Location::write(const std::string& name, std::span<const std::int64_t> values,
                     std::string_view unit, std::string_view description) const {
  write_dataset(*this, name, H5T_STD_I64LE, H5T_NATIVE_INT64, values.data(), values.size(), unit,
                description);
}

void Location::write(const std::string& name, std::span<const std::string> values,
                     std::string_view unit, std::string_view description) const {
  const std::string label = child_name(*this, name);
  if (uses_mpio(id(), label)) {
    // Parallel HDF5 1.10 cannot write variable-length data through MPI-IO ("Parallel IO does
    // not support writing VL ... datatypes yet"), so such files get fixed-length, null-padded
    // UTF-8 strings as wide as the longest value; read_strings() reads both layouts.
    std::size_t width = 1;  // a string type cannot have size 0
    for (const std::string& value : values) width = std::max(width, value.size());
    const Handle type = string_type(H5T_CSET_UTF8, width, H5T_STR_NULLPAD, label);
    std::string packed(values.size() * width, '\0');
    for (std::size_t i = 0; i < values.size(); ++i)
      values[i].copy(packed.data() + i * width, width);
    write_dataset(*this, name, type.get(), type.get(), packed.data(), values.size(), unit,
                  description);
    return;
  }
  const Handle type = utf8_vlen_type(label);
  std::vector<const char*> pointers(values.size());
  std::transform(values.begin(), values.end(), pointers.begin(),
                 [](const std::string& s) { return s.c_str(); });
  write_dataset(*this, name, type.get(), type.get(), static_cast<const void*>(pointers.data()),
                pointers.size(), unit, description);
}

std::vector<double> Location::read_doubles(const std::string& name) const {
  return read_numbers<double>(*this, name, H5T_NATIVE_DOUBLE, {H5T_FLOAT, H5T_INTEGER}, "numbers");
}

std::vector<std::int64_t> Location::read_ints(const std::string& name) const {
  return read_numbers<std::int64_t>(*this, name, H5T_NATIVE_INT64, {H5T_INTEGER}, "integers");
}

std::vector<std::string> Location::read_strings(const std::string& name) const {
  const std::string label = child_name(*this, name);
  const Handle dataset = open_dataset(*this, name, label);
  const Handle type =
      checked_type(H5Dget_type(dataset.get()), "H5Dget_type", {H5T_STRING}, "strings", label);
  const Handle space(check_h5(H5Dget_space(dataset.get()), "H5Dget_space", label), H5Sclose);
  const auto read = [&](hid_t mem_type, void* buffer) {
    check_h5(H5Dread(dataset.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buffer), "H5Dread",
             label);
  };
  return read_string_values(type.get(), space.get(), dataset_length(space.get(), label), read,
                            label);
}

std::int64_t Location::extent(const std::string& name) const {
  const std::string label = child_name(*this, name);
  const Handle dataset = open_dataset(*this, name, label);
  const Handle space(check_h5(H5Dget_space(dataset.get()), "H5Dget_space", label), H5Sclose);
  return static_cast<std::int64_t>(dataset_length(space.get(), label));
}

namespace {

// File space of a 1-D dataset with [offset, offset + count) selected (nothing selected for
// count 0), after checking that the range lies inside the dataset.
Handle select_range(hid_t dataset, std::int64_t offset, std::int64_t count,
                    const std::string& label) {
  Handle space(check_h5(H5Dget_space(dataset), "H5Dget_space", label), H5Sclose);
  const auto length = static_cast<std::int64_t>(dataset_length(space.get(), label));
  if (offset < 0 || count < 0 || offset > length || count > length - offset) {
    throw IoError(fmt::format("{}: elements [{}, {}) are outside the dataset of {} elements", label,
                              offset, offset + count, length));
  }
  if (count == 0) {
    check_h5(H5Sselect_none(space.get()), "H5Sselect_none", label);
    return space;
  }
  const auto start = static_cast<hsize_t>(offset);
  const auto n = static_cast<hsize_t>(count);
  check_h5(H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, &start, nullptr, &n, nullptr),
           "H5Sselect_hyperslab", label);
  return space;
}

// Memory space of `count` contiguous elements; a one-element space with nothing selected for
// count 0, since a rank with no data still takes part in a collective transfer.
Handle memory_space(std::int64_t count, const std::string& label) {
  const hsize_t n = std::max<hsize_t>(1, static_cast<hsize_t>(count));
  Handle space(check_h5(H5Screate_simple(1, &n, nullptr), "H5Screate_simple", label), H5Sclose);
  if (count == 0) check_h5(H5Sselect_none(space.get()), "H5Sselect_none", label);
  return space;
}

}  // namespace

std::vector<double> Location::read_doubles(const std::string& name, std::int64_t offset,
                                           std::int64_t count) const {
  const std::string label = child_name(*this, name);
  const Handle dataset = open_dataset(*this, name, label);
  checked_type(H5Dget_type(dataset.get()), "H5Dget_type", {H5T_FLOAT, H5T_INTEGER}, "numbers",
               label);
  const Handle file_space = select_range(dataset.get(), offset, count, label);
  std::vector<double> values(static_cast<std::size_t>(count));
  if (count > 0) {
    const Handle mem_space = memory_space(count, label);
    check_h5(H5Dread(dataset.get(), H5T_NATIVE_DOUBLE, mem_space.get(), file_space.get(),
                     H5P_DEFAULT, values.data()),
             "H5Dread", label);
  }
  return values;
}

DoubleColumn::DoubleColumn(const Location& location, const std::string& name,
                           std::size_t cache_bytes)
    : label_(child_name(location, name)) {
  if (!location.has(name)) throw IoError(fmt::format("{}: no such dataset", label_));
  const Handle dapl = make_plist(H5P_DATASET_ACCESS, label_);
  // Slots: a prime well above the number of chunks that fit, as the HDF5 guide advises;
  // w0 = 1: chunks are only read, so fully read ones go first.
  check_h5(H5Pset_chunk_cache(dapl.get(), 12421, cache_bytes, 1.0), "H5Pset_chunk_cache", label_);
  dataset_ = Handle(check_h5(H5Dopen2(location.id(), name.c_str(), dapl.get()), "H5Dopen2", label_),
                    H5Dclose);
  checked_type(H5Dget_type(dataset_.get()), "H5Dget_type", {H5T_FLOAT, H5T_INTEGER}, "numbers",
               label_);
  const Handle space(check_h5(H5Dget_space(dataset_.get()), "H5Dget_space", label_), H5Sclose);
  size_ = static_cast<std::int64_t>(dataset_length(space.get(), label_));
}

std::vector<double> DoubleColumn::read(std::int64_t offset, std::int64_t count) const {
  std::vector<double> values(static_cast<std::size_t>(std::max<std::int64_t>(count, 0)));
  if (count < 0) (void)select_range(dataset_.get(), offset, count, label_);  // its message
  read_into(offset, values);
  return values;
}

void DoubleColumn::read_into(std::int64_t offset, std::span<double> out) const {
  const auto count = static_cast<std::int64_t>(out.size());
  const Handle file_space = select_range(dataset_.get(), offset, count, label_);
  if (count == 0) return;
  const Handle mem_space = memory_space(count, label_);
  check_h5(H5Dread(dataset_.get(), H5T_NATIVE_DOUBLE, mem_space.get(), file_space.get(),
                   H5P_DEFAULT, out.data()),
           "H5Dread", label_);
}

std::vector<double> DoubleColumn::read_every(std::int64_t stride) const {
  if (stride < 1) throw InternalError(fmt::format("{}: read_every({})", label_, stride));
  const std::int64_t count = (size_ + stride - 1) / stride;
  std::vector<double> values(static_cast<std::size_t>(count));
  if (count == 0) return values;
  Handle file_space(check_h5(H5Dget_space(dataset_.get()), "H5Dget_space", label_), H5Sclose);
  const hsize_t start = 0;
  const auto step = static_cast<hsize_t>(stride);
  const auto n = static_cast<hsize_t>(count);
  check_h5(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, &start, &step, &n, nullptr),
           "H5Sselect_hyperslab", label_);
  const Handle mem_space = memory_space(count, label_);
  check_h5(H5Dread(dataset_.get(), H5T_NATIVE_DOUBLE, mem_space.get(), file_space.get(),
                   H5P_DEFAULT, values.data()),
           "H5Dread", label_);
  return values;
}

void Location::create_doubles(const std::string& name, std::int64_t size, std::int64_t chunk,
                              std::string_view unit, std::string_view description) const {
  const std::string label = child_name(*this, name);
  if (size < 0 || chunk < 1) {
    throw InternalError(
        fmt::format("{}: create_doubles with size {} and chunk {}", label, size, chunk));
  }
  if (has(name)) check_h5(H5Ldelete(id(), name.c_str(), H5P_DEFAULT), "H5Ldelete", label);
  const auto dims = static_cast<hsize_t>(size);
  // As in write_dataset: unlimited maxdims let a 0-element dataset be chunked.
  const hsize_t maxdims = H5S_UNLIMITED;
  const Handle space(check_h5(H5Screate_simple(1, &dims, &maxdims), "H5Screate_simple", label),
                     H5Sclose);
  const Handle dcpl = make_plist(H5P_DATASET_CREATE, label);
  const hsize_t chunk_size =
      std::clamp<hsize_t>(static_cast<hsize_t>(chunk), 1, std::max<hsize_t>(1, dims));
  check_h5(H5Pset_chunk(dcpl.get(), 1, &chunk_size), "H5Pset_chunk", label);
  // Every element is written by write_slab, so filling first would write the data twice.
  check_h5(H5Pset_fill_time(dcpl.get(), H5D_FILL_TIME_NEVER), "H5Pset_fill_time", label);
  const Handle lcpl = intermediate_groups_lcpl(label);
  Handle dataset(check_h5(H5Dcreate2(id(), name.c_str(), H5T_IEEE_F64LE, space.get(), lcpl.get(),
                                     dcpl.get(), H5P_DEFAULT),
                          "H5Dcreate2", label),
                 H5Dclose);
  if (!unit.empty()) write_string_attribute(dataset.get(), "unit", unit, label);
  if (!description.empty()) {
    write_string_attribute(dataset.get(), "description", description, label);
  }
  dataset.close();
}

void Location::write_slab(const std::string& name, std::int64_t offset,
                          std::span<const double> values) const {
  const std::string label = child_name(*this, name);
  const Handle dataset = open_dataset(*this, name, label);
  const auto count = static_cast<std::int64_t>(values.size());
  const Handle file_space = select_range(dataset.get(), offset, count, label);
  const Handle mem_space = memory_space(count, label);
  const Handle dxpl = make_plist(H5P_DATASET_XFER, label);
  if (uses_mpio(dataset.get(), label)) {
    check_h5(H5Pset_dxpl_mpio(dxpl.get(), H5FD_MPIO_COLLECTIVE), "H5Pset_dxpl_mpio", label);
  }
  const double none = 0.0;  // HDF5 wants a buffer even when nothing is selected
  check_h5(H5Dwrite(dataset.get(), H5T_NATIVE_DOUBLE, mem_space.get(), file_space.get(), dxpl.get(),
                    values.empty() ? &none : values.data()),
           "H5Dwrite", label);
}

Location create_file(const std::string& path) {
  silence_hdf5();
  const Handle fapl = file_access(path);
  Handle file(
      check_h5(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()), "H5Fcreate", path),
      H5Fclose);
  return {std::move(file), path};
}

Location open_file(const std::string& path) {
  silence_hdf5();
  // HDF5's own text for a missing file is "unable to open file (unable to open file)";
  // say what happened instead.
  // A FIFO would block H5Fopen forever; a name too long or a symlink loop is the user's.
  if (const auto problem = input_file_problem(path, false, false)) {
    throw UsageError(fmt::format("{}: cannot open HDF5 file: {}", path, *problem));
  }
  if (!exists_here(path)) throw missing_file(path);
  const Handle fapl = file_access(path);
  Handle file(check_h5(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get()), "H5Fopen", path),
              H5Fclose);
  return {std::move(file), path};
}

Location create_file_parallel(const std::string& path, const Communicator& comm) {
  silence_hdf5();
  const Handle fapl = mpio_access(comm.get(), path);
  Handle file(
      check_h5(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()), "H5Fcreate", path),
      H5Fclose);
  return {std::move(file), path};
}

Location open_file_parallel(const std::string& path, const Communicator& comm) {
  silence_hdf5();
  // Agreed across ranks: if only some ranks threw, the others would wait in H5Fopen forever.
  // Agreed like the existence: a FIFO would block H5Fopen on the ranks that reach it.
  std::string problem_text;
  if (const auto problem = input_file_problem(path, false, false)) problem_text = *problem;
  if (comm.max(problem_text.empty() ? 0 : 1) != 0) {
    if (!problem_text.empty()) {
      throw UsageError(fmt::format("{}: cannot open HDF5 file: {}", path, problem_text));
    }
    throw UsageError(fmt::format("{}: cannot open HDF5 file on another rank", path));
  }
  const int here = exists_here(path) ? 1 : 0;
  const int missing_somewhere = comm.max(1 - here);
  if (missing_somewhere != 0) {
    if (here == 0) throw missing_file(path);
    throw IoError(
        fmt::format("{}: cannot open HDF5 file: it does not exist on every rank "
                    "(is it on a file system that all nodes share?)",
                    path));
  }
  const Handle fapl = mpio_access(comm.get(), path);
  Handle file(check_h5(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get()), "H5Fopen", path),
              H5Fclose);
  return {std::move(file), path};
}

}  // namespace binflow::h5
