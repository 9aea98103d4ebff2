#pragma once
// Logging set-up shared by the server and the CLI. Logs carry ids, never clinical data.
#include <filesystem>
#include <string>

namespace clinicflow::app {

// Console always; a file too when `file` is not empty (its directory is created). Throws
// std::runtime_error when the file cannot be opened or the level is unknown.
void configure_logging(const std::string& level, const std::filesystem::path& file);

}  // namespace clinicflow::app
