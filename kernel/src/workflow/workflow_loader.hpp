#pragma once
// Reads a workflow TOML file into a validated Workflow, or explains in plain words, with file,
// line and column, everything that is wrong with it. The language is documented in docs/workflows.md.
#include "util/source_error.hpp"
#include "workflow/model.hpp"

#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace clinicflow::workflow {

struct LoadContext {
  std::optional<std::set<std::string>> roles;    // known roles; nullopt: roles are not checked
  std::optional<std::set<std::string>> plugins;  // configured plugins; nullopt: plugin names are not checked
};

struct LoadResult {
  std::shared_ptr<const Workflow> workflow;  // null when there are errors
  SourceErrors errors;
};

LoadResult load_workflow_file(const std::filesystem::path& file, const LoadContext& context);
LoadResult load_workflow_text(std::string_view text, const std::string& file_name, const LoadContext& context);

}  // namespace clinicflow::workflow
