#include "app/logging.hpp"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <stdexcept>

namespace clinicflow::app {

void configure_logging(const std::string& level, const std::filesystem::path& file) {
  std::vector<spdlog::sink_ptr> sinks{std::make_shared<spdlog::sinks::stderr_color_sink_mt>()};
  if (!file.empty()) {
    if (auto dir = file.parent_path(); !dir.empty()) std::filesystem::create_directories(dir);
    try {
      sinks.push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>(file.string()));
    } catch (const spdlog::spdlog_ex& e) {
      throw std::runtime_error("cannot open log file " + file.string() + ": " + e.what());
    }
  }
  auto logger = std::make_shared<spdlog::logger>("clinicflow", sinks.begin(), sinks.end());
  auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") throw std::runtime_error("unknown log level '" + level + "'");
  logger->set_level(parsed);
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
  spdlog::flush_every(std::chrono::seconds(1));
}

}  // namespace clinicflow::app
