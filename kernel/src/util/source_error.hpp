#pragma once
// An error in something a person wrote (a TOML file, a condition): where it is and what is wrong.
#include <string>
#include <vector>

namespace clinicflow {

struct SourceError {
  std::string file;
  int line = 0;    // 1-based; 0 when the whole file is meant (missing, unreadable)
  int column = 0;  // 1-based
  std::string message;

  // "workflows/x.toml:12:5: message" — the format editors and CI logs understand.
  std::string to_string() const {
    std::string out = file;
    if (line > 0) out += ":" + std::to_string(line) + ":" + std::to_string(column);
    return out + ": " + message;
  }
};

using SourceErrors = std::vector<SourceError>;

}  // namespace clinicflow
