#pragma once
// `clinicflow simulate`: runs synthetic patients through one workflow, in-process, with the server's
// own wiring (app::Runtime: the configured plugins, the engine, the store) on a fresh temporary data
// directory and the virtual clock, and prints what happened to them.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <ostream>

namespace clinicflow::cli {

struct SimulateOptions {
  std::filesystem::path workflow;
  int patients = 0;
  std::uint64_t seed = 1;
  std::optional<std::filesystem::path> config;   // default: config/clinicflow.toml
  std::optional<std::filesystem::path> profile;  // default: <workflow without .toml>.sim.toml when it exists
  bool json = false;
};

// Exit status: 0 the simulation ran; 1 it ran, but some cases got stuck; 2 nothing was simulated
// (configuration, workflow, plugin or profile problem — explained on `err`).
int simulate(const SimulateOptions& options, std::ostream& out, std::ostream& err);

// The virtual clock's starting instant (a Monday morning), so every run starts at the same time.
inline constexpr const char* kSimulationStart = "2026-01-05T09:00:00Z";

}  // namespace clinicflow::cli
