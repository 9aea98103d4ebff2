#pragma once
// The tests' scratch folders: util::TempDir, under the name the tests use.
#include "util/temp_dir.hpp"

namespace clinicflow::testing {
using util::TempDir;
}  // namespace clinicflow::testing
