#include "workflow/workflow_set.hpp"

#include <algorithm>

namespace clinicflow::workflow {

bool is_simulation_profile(const std::filesystem::path& file) { return file.filename().string().ends_with(".sim.toml"); }

std::optional<SourceError> WorkflowSet::add(std::shared_ptr<const Workflow> workflow) {
  auto key = std::make_pair(workflow->id, workflow->version);
  if (auto it = workflows_.find(key); it != workflows_.end())
    return SourceError{workflow->file, 1, 1,
                       "workflow '" + workflow->id + "' version " + std::to_string(workflow->version) + " is already defined in " +
                           it->second->file};
  workflows_.emplace(std::move(key), std::move(workflow));
  return std::nullopt;
}

SourceErrors WorkflowSet::load_directory(const std::filesystem::path& dir, const LoadContext& context,
                                         std::vector<std::string>* skipped) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return {{dir.string(), 0, 0, "workflows directory not found"}};
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec))
    if (entry.path().extension() == ".toml" && !is_simulation_profile(entry.path())) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  SourceErrors errors;
  for (const auto& file : files) {
    LoadResult result = load_workflow_file(file, context);
    if (skipped && !result.workflow && !result.unanswered_plugins.empty()) {
      std::string names;
      for (const auto& p : result.unanswered_plugins) names += (names.empty() ? "" : ", ") + p;
      std::string entry = file.string() + ": needs plugin(s) " + names + " that could not be asked; its errors:";
      for (const auto& e : result.errors) entry += "\n  " + e.to_string();
      skipped->push_back(std::move(entry));
      continue;
    }
    errors.insert(errors.end(), result.errors.begin(), result.errors.end());
    if (result.workflow)
      if (auto duplicate = add(result.workflow)) errors.push_back(*duplicate);
  }
  return errors;
}

std::shared_ptr<const Workflow> WorkflowSet::find(std::string_view id, std::optional<int> version) const {
  if (version) {
    auto it = workflows_.find(std::make_pair(std::string(id), *version));
    return it == workflows_.end() ? nullptr : it->second;
  }
  std::shared_ptr<const Workflow> latest;
  for (const auto& [key, workflow] : workflows_)
    if (key.first == id) latest = workflow;  // the map is ordered by version within an id
  return latest;
}

std::vector<std::shared_ptr<const Workflow>> WorkflowSet::all() const {
  std::vector<std::shared_ptr<const Workflow>> out;
  for (const auto& [key, workflow] : workflows_) out.push_back(workflow);
  return out;
}

}  // namespace clinicflow::workflow
