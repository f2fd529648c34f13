#pragma once
// The unit tests' scratch directory: a fresh directory per test under the system's temporary
// directory (named after the test suite and this process), removed after the test.
#include <unistd.h>

#include <filesystem>
#include <string>
#include <system_error>

#include <gtest/gtest.h>

namespace binflow::testing_support {

class TempDirTest : public testing::Test {
protected:
  void SetUp() override {
    const std::string suite = testing::UnitTest::GetInstance()->current_test_suite()->name();
    dir_ = std::filesystem::temp_directory_path() /
           ("binflow_" + suite + "_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  /// `name` inside the scratch directory.
  [[nodiscard]] std::string path(const std::string& name) const { return (dir_ / name).string(); }

  std::filesystem::path dir_;
};

}  // namespace binflow::testing_support
