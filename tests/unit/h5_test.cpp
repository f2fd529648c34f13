// Serial HDF5 access: round trips, zero-length and chunked datasets, the text of errors, and
// handle ownership. The parallel (MPI-IO) functions are tested in tests/mpi/h5_parallel_test.cpp.
#include "binflow/h5.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <type_traits>
#include <vector>

#include <gtest/gtest.h>

#include "binflow/error.hpp"
#include "temp_dir.hpp"

namespace {

namespace fs = std::filesystem;
using binflow::IoError;
using binflow::h5::Handle;
using binflow::h5::Location;

static_assert(!std::is_copy_constructible_v<Handle>);
static_assert(!std::is_copy_assignable_v<Handle>);
static_assert(std::is_nothrow_move_constructible_v<Handle>);
static_assert(std::is_nothrow_move_assignable_v<Handle>);
static_assert(!std::is_copy_constructible_v<Location>);

// An id that no HDF5 object has: closing it must fail.
constexpr hid_t kBogusId = 0x0123456789;

std::string io_message(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const IoError& e) {
    return e.what();
  }
  return "";
}

// Raw HDF5 on the Location's own id: opening the file a second time with the library's
// default close degree would clash with binflow's H5F_CLOSE_SEMI.

// The chunk size HDF5 stored for a dataset (0 if it is not chunked).
hsize_t chunk_of(const Location& file, const std::string& dataset) {
  const Handle d(H5Dopen2(file.id(), dataset.c_str(), H5P_DEFAULT), H5Dclose);
  const Handle dcpl(H5Dget_create_plist(d.get()), H5Pclose);
  hsize_t chunk = 0;
  if (H5Pget_layout(dcpl.get()) != H5D_CHUNKED) return 0;
  H5Pget_chunk(dcpl.get(), 1, &chunk);
  return chunk;
}

std::string string_attribute_of(const Location& file, const std::string& object,
                                const std::string& name) {
  const Handle attr(
      H5Aopen_by_name(file.id(), object.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  const Handle type(H5Aget_type(attr.get()), H5Tclose);
  EXPECT_GT(H5Tis_variable_str(type.get()), 0);
  EXPECT_EQ(H5Tget_cset(type.get()), H5T_CSET_UTF8);
  char* text = nullptr;
  EXPECT_GE(H5Aread(attr.get(), type.get(), &text), 0);
  std::string out = text != nullptr ? text : "";
  H5free_memory(text);
  return out;
}

class H5File : public binflow::testing_support::TempDirTest {
protected:
};

TEST_F(H5File, RoundTripsDatasetsAndAttributes) {
  const std::string file = path("round.h5");
  const std::vector<double> times = {0.5, 1.25, -3.0, 1e300};
  const std::vector<std::int64_t> counts = {0, -1, 42, std::int64_t{1} << 62};
  const std::vector<std::string> names = {"Crab", "", "PSR B0531+21 \xe2\x9c\x93", "a b"};
  {
    Location out = binflow::h5::create_file(file);
    EXPECT_EQ(out.name(), file);
    out.write_attribute("tool", "lightcurve");
    out.write_attribute("mjdref", 51544.5);
    out.write_attribute("format_version", std::int64_t{1});
    out.write("events/time", times, "s", "arrival time, MET");
    out.write("counts", counts);
    out.write("names", names);
    const Location group = out.create_group("results/deep");
    EXPECT_EQ(group.name(), file + ":/results/deep");
    group.write_attribute("object", "Crab");
    group.write("flux", times, "ph cm^-2 s^-1");
    out.write_attribute("tool", "spectrum");  // rewriting an attribute replaces it
  }
  const Location in = binflow::h5::open_file(file);
  EXPECT_EQ(in.read_string_attribute("tool"), "spectrum");
  EXPECT_EQ(in.read_double_attribute("mjdref"), 51544.5);
  EXPECT_EQ(in.read_int_attribute("format_version"), 1);
  EXPECT_EQ(in.read_double_attribute("format_version"), 1.0);
  EXPECT_TRUE(in.has_attribute("mjdref"));
  EXPECT_FALSE(in.has_attribute("nope"));
  EXPECT_EQ(in.read_doubles("events/time"), times);
  EXPECT_EQ(in.read_doubles("/events/time"), times);
  EXPECT_EQ(in.read_ints("counts"), counts);
  EXPECT_EQ(in.read_strings("names"), names);
  EXPECT_EQ(in.extent("events/time"), 4);
  const Location group = in.open_group("results/deep");
  EXPECT_EQ(group.read_string_attribute("object"), "Crab");
  EXPECT_EQ(group.read_doubles("flux"), times);
  EXPECT_EQ(string_attribute_of(in, "events/time", "unit"), "s");
  EXPECT_EQ(string_attribute_of(in, "events/time", "description"), "arrival time, MET");
  EXPECT_EQ(string_attribute_of(in, "results/deep/flux", "unit"), "ph cm^-2 s^-1");
}

TEST_F(H5File, HasWalksPathsWithoutFailing) {
  const std::string file = path("has.h5");
  const Location out = binflow::h5::create_file(file);
  out.write("a/b/x", std::vector<double>{1.0});
  EXPECT_TRUE(out.has("a"));
  EXPECT_TRUE(out.has("a/b"));
  EXPECT_TRUE(out.has("/a/b/x"));
  EXPECT_TRUE(out.has("a//b/x"));
  EXPECT_FALSE(out.has("a/c"));
  EXPECT_FALSE(out.has("z/y/x"));        // missing parent: H5Lexists alone would fail here
  EXPECT_FALSE(out.has("a/b/x/child"));  // a dataset has no children
  ASSERT_GE(H5Lcreate_soft("/nowhere", out.id(), "dangling", H5P_DEFAULT, H5P_DEFAULT), 0);
  EXPECT_FALSE(out.has("dangling"));
  EXPECT_TRUE(out.open_group("a").has("b/x"));
}

TEST_F(H5File, ZeroLengthDatasets) {
  const std::string file = path("empty.h5");
  {
    const Location out = binflow::h5::create_file(file);
    out.write("d", std::vector<double>{}, "s");
    out.write("i", std::vector<std::int64_t>{});
    out.write("s", std::vector<std::string>{});
  }
  const Location in = binflow::h5::open_file(file);
  EXPECT_TRUE(in.read_doubles("d").empty());
  EXPECT_TRUE(in.read_ints("i").empty());
  EXPECT_TRUE(in.read_strings("s").empty());
  EXPECT_EQ(in.extent("d"), 0);
  EXPECT_EQ(chunk_of(in, "d"), 1U);
}

TEST_F(H5File, ChunksAreAtMost64kElements) {
  const std::string file = path("chunks.h5");
  {
    const Location out = binflow::h5::create_file(file);
    out.write("small", std::vector<double>(10, 1.0));
    out.write("large", std::vector<double>(200'000, 2.0));
  }
  const Location in = binflow::h5::open_file(file);
  EXPECT_EQ(chunk_of(in, "small"), 10U);
  EXPECT_EQ(chunk_of(in, "large"), 65536U);
  EXPECT_EQ(in.read_doubles("large"), std::vector<double>(200'000, 2.0));
}

TEST_F(H5File, RewritingADatasetReplacesIt) {
  const std::string file = path("rewrite.h5");
  const Location out = binflow::h5::create_file(file);
  out.write("x", std::vector<double>{1, 2, 3});
  out.write("x", std::vector<double>{4});
  EXPECT_EQ(out.read_doubles("x"), std::vector<double>{4});
}

TEST_F(H5File, ReadsFixedLengthStringsWrittenByOtherTools) {
  // numpy bytes arrays and converted FITS files store fixed-length, padded strings.
  const std::string file = path("fixed.h5");
  {
    const Location out = binflow::h5::create_file(file);
    const Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(type.get(), 6);
    H5Tset_strpad(type.get(), H5T_STR_NULLPAD);
    const hsize_t n = 3;
    const Handle space(H5Screate_simple(1, &n, nullptr), H5Sclose);
    const Handle d(H5Dcreate2(out.id(), "fixed", type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT,
                              H5P_DEFAULT),
                   H5Dclose);
    const char data[] = "ab\0\0\0\0sixsix\0\0\0\0\0\0";
    ASSERT_GE(H5Dwrite(d.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, data), 0);
    const Handle scalar(H5Screate(H5S_SCALAR), H5Sclose);
    const Handle a(
        H5Acreate2(out.id(), "padded", type.get(), scalar.get(), H5P_DEFAULT, H5P_DEFAULT),
        H5Aclose);
    ASSERT_GE(H5Awrite(a.get(), type.get(), "xyz\0\0\0"), 0);
  }
  const Location in = binflow::h5::open_file(file);
  EXPECT_EQ(in.read_strings("fixed"), (std::vector<std::string>{"ab", "sixsix", ""}));
  EXPECT_EQ(in.read_string_attribute("padded"), "xyz");
}

TEST_F(H5File, MissingFileNamesThePath) {
  const std::string file = path("missing.h5");
  EXPECT_EQ(io_message([&] { (void)binflow::h5::open_file(file); }),
            file + ": cannot open HDF5 file: it does not exist");
}

TEST_F(H5File, NotAnHdf5FileFoldsTheErrorStackIntoOneQuietLine) {
  const std::string file = path("text.h5");
  std::ofstream(file) << "not hdf5\n";
  testing::internal::CaptureStderr();
  const std::string message = io_message([&] { (void)binflow::h5::open_file(file); });
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");  // HDF5's own printing is off
  EXPECT_EQ(message.rfind("H5Fopen failed on " + file + ": unable to open file (", 0), 0U)
      << message;
  EXPECT_NE(message.find("file signature not found"), std::string::npos) << message;
  EXPECT_NE(message.find("(h5.cpp:"), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

TEST_F(H5File, CreateInAMissingDirectoryFails) {
  const std::string file = path("no/such/dir/out.h5");
  const std::string message = io_message([&] { (void)binflow::h5::create_file(file); });
  EXPECT_EQ(message.rfind("H5Fcreate failed on " + file + ": unable to create file", 0), 0U)
      << message;
}

TEST_F(H5File, ClosingAFileWithOpenChildrenFailsAsUnderMpiIo) {
  const std::string file = path("semi.h5");
  Location out = binflow::h5::create_file(file);
  const Location group = out.create_group("g");
  const std::string message = io_message([&] { out.close(); });
  EXPECT_EQ(message.rfind("H5Fclose failed on " + file + ": ", 0), 0U) << message;
  EXPECT_NE(message.find("objects still open"), std::string::npos) << message;
}

TEST_F(H5File, ContentErrorsNameTheObject) {
  const std::string file = path("content.h5");
  const Location out = binflow::h5::create_file(file);
  out.write("x", std::vector<double>{1.0});
  out.write_attribute("d", 2.5);
  (void)out.create_group("g");
  EXPECT_EQ(io_message([&] { (void)out.read_doubles("nope"); }), file + ":/nope: no such dataset");
  EXPECT_EQ(io_message([&] { (void)out.read_ints("x"); }),
            file + ":/x holds floating-point values, expected integers");
  EXPECT_EQ(io_message([&] { (void)out.read_strings("x"); }),
            file + ":/x holds floating-point values, expected strings");
  EXPECT_EQ(io_message([&] { (void)out.read_string_attribute("d"); }),
            file + " attribute 'd' holds floating-point values, expected a string");
  EXPECT_EQ(io_message([&] { (void)out.read_int_attribute("d"); }),
            file + " attribute 'd' holds floating-point values, expected an integer");
  EXPECT_EQ(io_message([&] { (void)out.read_double_attribute("e"); }),
            file + " has no attribute 'e'");
  EXPECT_EQ(io_message([&] { (void)out.open_group("h"); }), file + ":/h: no such group");
  EXPECT_EQ(io_message([&] { (void)out.open_group("g").read_doubles("/x/y"); }),
            file + ":/x/y: no such dataset");
  const std::string exists = io_message([&] { (void)out.create_group("g"); });
  EXPECT_EQ(exists.rfind("H5Gcreate2 failed on " + file + ":/g: unable to create group", 0), 0U)
      << exists;
}

TEST(CheckH5, PassesIdsThroughAndNamesTheCallOnFailure) {
  EXPECT_EQ(binflow::h5::check_h5(7, "H5Xdo", "thing"), 7);
  const std::string message = io_message([] { binflow::h5::check_h5(-1, "H5Xdo", "thing"); });
  EXPECT_EQ(message.rfind("H5Xdo failed on thing: ", 0), 0U) << message;
  EXPECT_NE(message.find("(h5_test.cpp:"), std::string::npos) << message;
}

TEST(Handle, MovesTransferOwnership) {
  Handle a(H5Screate(H5S_SCALAR), H5Sclose);
  ASSERT_TRUE(a.valid());
  const hid_t id = a.get();
  Handle b(std::move(a));
  EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): the moved-from state is the point
  EXPECT_EQ(b.get(), id);

  Handle c(H5Screate(H5S_SCALAR), H5Sclose);
  const hid_t replaced = c.get();
  c = std::move(b);
  EXPECT_EQ(c.get(), id);
  EXPECT_LE(H5Iis_valid(replaced), 0);  // the object c owned before was closed
  EXPECT_GT(H5Iis_valid(id), 0);

  c.close();
  EXPECT_FALSE(c.valid());
  EXPECT_LE(H5Iis_valid(id), 0);
  EXPECT_NO_THROW(c.close());  // closing twice is a no-op
  EXPECT_FALSE(Handle().valid());
}

TEST(Handle, CloseThrowsButTheDestructorOnlyWarns) {
  Handle bad(kBogusId, H5Sclose);
  const std::string message = io_message([&] { bad.close(); });
  EXPECT_EQ(message.rfind("H5Sclose failed on ", 0), 0U) << message;
  EXPECT_FALSE(bad.valid());

  testing::internal::CaptureStderr();
  EXPECT_NO_THROW({ const Handle doomed(kBogusId, H5Sclose); });
  const std::string warning = testing::internal::GetCapturedStderr();
  EXPECT_EQ(warning.rfind("binflow: warning: H5Sclose failed in a destructor: ", 0), 0U) << warning;
  EXPECT_EQ(warning.find('\n'), warning.size() - 1) << warning;
}

}  // namespace
