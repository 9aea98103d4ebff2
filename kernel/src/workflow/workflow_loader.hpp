#pragma once
// Reads a workflow TOML file into a validated Workflow, or explains in plain words, with file,
// line and column, everything that is wrong with it. The language is documented in docs/workflows.md.
#include "util/source_error.hpp"
#include "workflow/model.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace clinicflow::workflow {

struct LoadContext {
  std::optional<std::set<std::string>> roles;    // known roles; nullopt: roles are not checked
  std::optional<std::set<std::string>> plugins;  // configured plugins; nullopt: plugin names are not checked
  // The form fields a plugin adds to a step naming it (a route's session vitals, ...). Unset, or
  // returning nullopt (with `error`), means the plugin cannot be asked: that is reported.
  std::function<std::optional<boost::json::array>(std::string_view plugin, const boost::json::object& step_settings,
                                                  std::string& error)>
      plugin_fields;
  // The kind (route, billing, messaging) of a loaded plugin; unset: kinds are not checked.
  std::function<std::optional<std::string>(std::string_view plugin)> plugin_kind;
};

struct LoadResult {
  std::shared_ptr<const Workflow> workflow;  // null when there are errors
  SourceErrors errors;
  std::set<std::string> unanswered_plugins;  // plugins that could not be asked for their fields
};

LoadResult load_workflow_file(const std::filesystem::path& file, const LoadContext& context);
LoadResult load_workflow_text(std::string_view text, const std::string& file_name, const LoadContext& context);

}  // namespace clinicflow::workflow
