#include "sim_report.hpp"

#include "text_table.hpp"
#include "util/time.hpp"

#include <cstdio>

namespace clinicflow::cli::sim {
namespace json = boost::json;
using Align = TextTable::Align;

namespace {

std::string percent(int part, int whole) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", whole > 0 ? 100.0 * part / whole : 0.0);
  return buf;
}

std::string fixed2(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", x);
  return buf;
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

constexpr std::size_t kStuckListed = 20;

}  // namespace

std::string format_span(Duration d) {
  if (d <= 0) return "0";
  if (d < 60'000) return std::to_string(d / 1000) + "s";
  const std::pair<Duration, char> units[] = {{86'400'000, 'd'}, {3'600'000, 'h'}, {60'000, 'm'}};
  for (std::size_t i = 0; i < 3; ++i) {
    auto [size, name] = units[i];
    if (d < size) continue;
    std::string out = std::to_string(d / size) + name;
    if (i + 1 < 3)
      if (Duration minor = d % size / units[i + 1].first; minor > 0) out += " " + std::to_string(minor) + units[i + 1].second;
    return out;
  }
  return "0";
}

std::string format_cents(std::int64_t cents) {
  bool negative = cents < 0;
  std::uint64_t v = negative ? static_cast<std::uint64_t>(-(cents + 1)) + 1 : static_cast<std::uint64_t>(cents);
  std::string whole = std::to_string(v / 100);
  for (int i = static_cast<int>(whole.size()) - 3; i > 0; i -= 3) whole.insert(static_cast<std::size_t>(i), ",");
  char frac[4];
  std::snprintf(frac, sizeof frac, "%02u", static_cast<unsigned>(v % 100));
  return (negative ? "-" : "") + whole + "." + frac;
}

void render_text(const Summary& s, std::ostream& out) {
  const RunInfo& r = s.run;
  out << "Simulation of " << r.workflow_id << " version " << r.workflow_version << ": " << r.workflow_title << "\n";
  out << "  workflow  " << r.workflow_file << "\n";
  out << "  config    " << r.config_file << "\n";
  out << "  profile   " << (r.profile_file.empty() ? "none" : r.profile_file) << "\n";
  out << "  patients  " << r.patients << ", all starting at once, seed " << r.seed << "\n";
  out << "  clock     virtual, " << format_rfc3339(r.clock_start) << " to " << format_rfc3339(r.clock_end) << "\n";

  out << "\nOutcomes (time: from the case's opening to its end)\n";
  TextTable outcomes({{"outcome"}, {"reason"}, {"patients", Align::right}, {"%", Align::right}, {"median time", Align::right},
                      {"max time", Align::right}});
  int total = 0;
  for (const auto& o : s.outcomes) {
    outcomes.add({o.outcome, o.reason, std::to_string(o.patients), percent(o.patients, r.patients), format_span(o.median), format_span(o.max)});
    total += o.patients;
  }
  outcomes.add_rule();
  outcomes.add({"total", "", std::to_string(total), percent(total, r.patients)});
  outcomes.render(out);

  out << "\nTime in stage (per patient who entered it; tasks are done the moment they open, so this is\n"
         "the waiting the workflow itself sets: delays, intervals between repetitions)\n";
  TextTable stages({{"stage"}, {"patients", Align::right}, {"median", Align::right}, {"max", Align::right}});
  for (const auto& st : s.stages)
    stages.add({st.id, std::to_string(st.patients), st.patients ? format_span(st.median) : "-", st.patients ? format_span(st.max) : "-"});
  stages.render(out);

  bool any_repeated = std::any_of(s.stages.begin(), s.stages.end(), [](const StageRow& st) { return st.repeated; });
  if (any_repeated) {
    out << "\nSessions (repetitions started in repeated stages)\n";
    TextTable sessions({{"stage"}, {"patients", Align::right}, {"sessions", Align::right}, {"per patient", Align::right}, {"most", Align::right}});
    for (const auto& st : s.stages)
      if (st.repeated)
        sessions.add({st.id, std::to_string(st.patients), std::to_string(st.repetitions),
                      st.patients ? fixed2(static_cast<double>(st.repetitions) / st.patients) : "-", std::to_string(st.max_repetitions)});
    sessions.render(out);
  }

  out << "\nSteps (cases on which each step was reached and completed; completions count every repetition)\n";
  TextTable steps({{"step"}, {"stage"}, {"reached", Align::right}, {"completed", Align::right}, {"completions", Align::right}, {"note"}});
  for (const auto& st : s.steps)
    steps.add({st.id + (st.automatic ? " (automatic)" : ""), st.stage, std::to_string(st.reached), std::to_string(st.completed),
               std::to_string(st.completions),
               st.reached == 0 && st.completed == 0 ? "never reached" : st.completed == 0 ? "never completed" : ""});
  steps.render(out);

  out << "\nRefusals and failures (each retried with new values, at most " << r.attempts_per_step << " attempts per step)\n";
  if (s.problems.empty()) {
    out << "  none\n";
  } else {
    TextTable problems({{"step"}, {"kind"}, {"count", Align::right}, {"reason"}});
    for (const auto& p : s.problems)
      problems.add({p.step, p.kind, std::to_string(p.count),
                    p.example + (p.variants > 1 ? " (and " + std::to_string(p.variants - 1) + " more like it)" : "")});
    problems.render(out);
  }

  out << "\nCharges (from charge_posted events)\n";
  if (s.charges.empty()) {
    out << "  none\n";
  } else {
    TextTable charges({{"code"}, {"description"}, {"postings", Align::right}, {"units", Align::right}, {"amount", Align::right}});
    std::int64_t units = 0, cents = 0;
    int postings = 0;
    for (const auto& c : s.charges) {
      charges.add({c.code, c.description, std::to_string(c.postings), std::to_string(c.units), format_cents(c.amount_cents)});
      postings += c.postings, units += c.units, cents += c.amount_cents;
    }
    charges.add_rule();
    charges.add({"total", "", std::to_string(postings), std::to_string(units), format_cents(cents)});
    charges.render(out);
  }

  out << "\nMessages (queued in the outbox; the simulator sends nothing)\n";
  if (s.messages.empty()) {
    out << "  none\n";
  } else {
    TextTable messages({{"template"}, {"to"}, {"messages", Align::right}, {"patients", Align::right}});
    for (const auto& m : s.messages) messages.add({m.template_name, m.recipients, std::to_string(m.messages), std::to_string(m.patients)});
    messages.render(out);
  }

  out << "\nNever reached: " << (s.never_reached.empty() ? "none (every step was reached)" : joined(s.never_reached)) << "\n";
  if (!s.reached_never_completed.empty()) out << "Reached but never completed: " << joined(s.reached_never_completed) << "\n";

  out << "\nStuck cases: ";
  if (s.stuck.empty()) {
    out << "none\n";
    return;
  }
  out << s.stuck.size() << " (closed as \"simulation: stuck at <step>\")\n";
  TextTable stuck({{"patient"}, {"step"}, {"attempts", Align::right}, {"last reason"}});
  for (std::size_t i = 0; i < s.stuck.size() && i < kStuckListed; ++i)
    stuck.add({s.stuck[i].patient_id, s.stuck[i].step, std::to_string(s.stuck[i].attempts), s.stuck[i].reason});
  stuck.render(out);
  if (s.stuck.size() > kStuckListed) out << "  ... and " << s.stuck.size() - kStuckListed << " more\n";
}

json::object render_json(const Summary& s) {
  const RunInfo& r = s.run;
  json::object o;
  o["workflow"] = {{"id", r.workflow_id}, {"version", r.workflow_version}, {"title", r.workflow_title}, {"file", r.workflow_file}};
  o["config"] = r.config_file;
  o["profile"] = r.profile_file.empty() ? json::value(nullptr) : json::value(r.profile_file);
  o["seed"] = r.seed;
  o["patients"] = r.patients;
  o["attempts_per_step"] = r.attempts_per_step;
  o["clock"] = {{"start", format_rfc3339(r.clock_start)}, {"end", format_rfc3339(r.clock_end)}};

  json::array outcomes;
  for (const auto& x : s.outcomes) outcomes.push_back({{"outcome", x.outcome}, {"reason", x.reason}, {"patients", x.patients}, {"median_ms", x.median}, {"max_ms", x.max}});
  o["outcomes"] = std::move(outcomes);

  json::array stages;
  for (const auto& x : s.stages) {
    json::object st{{"stage", x.id},          {"title", x.title},         {"repeated", x.repeated},
                    {"patients", x.patients}, {"median_ms", x.median},    {"max_ms", x.max},
                    {"median", format_span(x.median)}, {"max", format_span(x.max)}};
    if (x.repeated) st["sessions"] = x.repetitions, st["most_sessions"] = x.max_repetitions;
    stages.push_back(std::move(st));
  }
  o["stages"] = std::move(stages);

  json::array steps;
  for (const auto& x : s.steps)
    steps.push_back({{"step", x.id}, {"stage", x.stage}, {"kind", x.automatic ? "automatic" : "task"}, {"reached", x.reached}, {"completed", x.completed},
                     {"completions", x.completions}});
  o["steps"] = std::move(steps);

  json::array problems;
  for (const auto& x : s.problems)
    problems.push_back({{"step", x.step}, {"kind", x.kind}, {"count", x.count}, {"reason", x.example}, {"pattern", x.pattern}, {"variants", x.variants}});
  o["refusals"] = std::move(problems);

  json::array charges;
  for (const auto& x : s.charges)
    charges.push_back({{"code", x.code}, {"description", x.description}, {"postings", x.postings}, {"units", x.units}, {"amount_cents", x.amount_cents}});
  o["charges"] = std::move(charges);

  json::array messages;
  for (const auto& x : s.messages)
    messages.push_back({{"template", x.template_name}, {"to", x.recipients}, {"messages", x.messages}, {"patients", x.patients}});
  o["messages"] = std::move(messages);

  json::array never, unfinished;
  for (const auto& id : s.never_reached) never.push_back(json::string(id));
  for (const auto& id : s.reached_never_completed) unfinished.push_back(json::string(id));
  o["never_reached"] = std::move(never);
  o["reached_never_completed"] = std::move(unfinished);

  json::array stuck;
  for (const auto& x : s.stuck) stuck.push_back({{"patient", x.patient_id}, {"step", x.step}, {"attempts", x.attempts}, {"reason", x.reason}});
  o["stuck"] = std::move(stuck);
  return o;
}

}  // namespace clinicflow::cli::sim
