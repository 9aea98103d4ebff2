#pragma once
// Every workflow version the server knows. Several versions of one id live side by side:
// a case stays on the version it was opened with.
#include "util/source_error.hpp"
#include "workflow/workflow_loader.hpp"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace clinicflow::workflow {

// `<name>.sim.toml` beside a workflow is its simulation profile (`clinicflow simulate`), not a
// workflow: loading a folder skips it.
bool is_simulation_profile(const std::filesystem::path& file);

class WorkflowSet {
 public:
  // Adds a loaded workflow; returns an error naming both files when that id and version exist already.
  std::optional<SourceError> add(std::shared_ptr<const Workflow> workflow);

  // Loads every *.toml file in `dir` but simulation profiles (sorted by name). Files with errors are skipped and their
  // errors returned; the caller decides whether that is fatal. With `skipped` given, a file whose
  // only trouble may be a plugin that failed to load is skipped without counting as an error, and
  // named there with the plugins it needs ("file: needs plugin(s) a, b").
  SourceErrors load_directory(const std::filesystem::path& dir, const LoadContext& context,
                              std::vector<std::string>* skipped = nullptr);

  // `version` absent: the highest version of that id.
  std::shared_ptr<const Workflow> find(std::string_view id, std::optional<int> version = std::nullopt) const;
  std::vector<std::shared_ptr<const Workflow>> all() const;

 private:
  std::map<std::pair<std::string, int>, std::shared_ptr<const Workflow>, std::less<>> workflows_;
};

}  // namespace clinicflow::workflow
