#pragma once
// A simulation summary for people (aligned plain-text tables) and for machines (JSON).
#include "sim_summary.hpp"

#include <boost/json/object.hpp>

#include <ostream>

namespace clinicflow::cli::sim {

void render_text(const Summary& summary, std::ostream& out);
boost::json::object render_json(const Summary& summary);

// "0", "45m", "3h 20m", "10d 4h": the two largest units, rounded down.
std::string format_span(Duration d);
// 123456 cents -> "1,234.56"
std::string format_cents(std::int64_t cents);

}  // namespace clinicflow::cli::sim
