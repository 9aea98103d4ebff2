#pragma once
// A simulation profile: the assumptions `clinicflow simulate` makes about the values staff enter,
// per field, read from a TOML file next to the workflow (<workflow>.sim.toml) or named with
// --profile. Not clinical rules: only how often each answer is given in the simulation.
//
//   [field."<step>.<field>"]
//   values = [true, false]     # candidate values (JSON scalars of the field's type)
//   weights = [0.05, 0.95]     # optional, same length; default uniform
//   [field."<step>.<other>"]
//   range = [110, 150]         # integer/number fields: uniform in [lo, hi]
#include "util/source_error.hpp"
#include "workflow/model.hpp"

#include <boost/json/value.hpp>

#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace clinicflow::cli::sim {

struct FieldProfile {
  std::string step, field;              // "<step>.<field>" as written
  std::vector<boost::json::value> values;  // values mode: validated against the field
  std::vector<double> weights;             // values mode: one per value (uniform when not given)
  std::optional<std::pair<double, double>> range;  // range mode: inclusive, within the field's min/max
};

struct Profile {
  std::filesystem::path file;  // empty: no profile
  std::map<std::string, FieldProfile> fields;  // by "<step>.<field>"

  const FieldProfile* find(const std::string& step, const std::string& field) const;
  bool empty() const { return fields.empty(); }
};

class ProfileError : public std::runtime_error {
 public:
  explicit ProfileError(SourceErrors errors);
  const SourceErrors& errors() const { return errors_; }

 private:
  SourceErrors errors_;
};

// Reads and checks a profile against the workflow it is for. Throws ProfileError listing every
// problem with file, line, column and key: TOML syntax, unknown keys, unknown steps or fields,
// values of the wrong type or outside the field's limits, weights of the wrong length.
Profile load_profile(const std::filesystem::path& file, const workflow::Workflow& workflow);

// <workflow path without .toml>.sim.toml
std::filesystem::path default_profile_path(const std::filesystem::path& workflow_file);

}  // namespace clinicflow::cli::sim
