#pragma once
// A fresh, empty folder of its own under the system temp folder (mkdtemp: unique even across
// processes running at once), removed with everything in it at the end. For scratch databases
// (`clinicflow simulate`) and the tests.
#include <stdlib.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>

namespace clinicflow::util {

class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "clinicflow-test") {
    std::string pattern = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("cannot create a temporary folder like " + pattern);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace clinicflow::util
