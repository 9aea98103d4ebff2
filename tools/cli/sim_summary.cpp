#include "sim_summary.hpp"

#include "engine/case_state.hpp"

#include <algorithm>
#include <cctype>

namespace clinicflow::cli::sim {
namespace json = boost::json;

namespace {

std::string text_of(const json::object& data, const char* key) {
  const json::value* v = data.if_contains(key);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

std::int64_t int_of(const json::object& data, const char* key, std::int64_t fallback = 0) {
  const json::value* v = data.if_contains(key);
  if (!v) return fallback;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) return static_cast<std::int64_t>(v->get_uint64());
  if (v->is_double()) return static_cast<std::int64_t>(v->get_double());
  return fallback;
}

Duration median_of(std::vector<Duration> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  std::size_t n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

}  // namespace

std::string reason_pattern(const std::string& reason) {
  std::string out;
  for (std::size_t i = 0; i < reason.size();) {
    unsigned char c = static_cast<unsigned char>(reason[i]);
    bool in_word = !out.empty() && (std::isalnum(static_cast<unsigned char>(out.back())) || out.back() == '_');
    if (std::isdigit(c) && !in_word) {
      while (i < reason.size() && (std::isdigit(static_cast<unsigned char>(reason[i])) ||
                                   (reason[i] == '.' && i + 1 < reason.size() && std::isdigit(static_cast<unsigned char>(reason[i + 1])))))
        ++i;
      out += '#';
      continue;
    }
    out += reason[i++];
  }
  return out;
}

SummaryBuilder::SummaryBuilder(const workflow::Workflow& workflow) : workflow_(workflow) {}

void SummaryBuilder::add_problem(const std::string& step, const std::string& kind, const std::string& reason) {
  ProblemTally& t = problems_[{step, kind, reason_pattern(reason)}];
  if (t.count++ == 0) t.example = reason;
  t.variants.insert(reason);
}

void SummaryBuilder::add(const CaseRun& run) {
  const engine::CaseState& s = run.final_state;
  outcomes_[{s.outcome.empty() ? s.status : s.outcome, s.reason}].push_back(
      run.events.empty() ? 0 : run.events.back().at - run.events.front().at);

  std::map<std::string, Duration> in_stage;
  std::map<std::string, int> reps;
  std::set<std::string> reached, completed;
  std::string stage;
  TimePoint since = 0;
  for (const auto& e : run.events) {
    if (e.type == engine::event::stage_entered || e.type == engine::event::case_ended) {
      if (!stage.empty()) in_stage[stage] += e.at - since;
      stage.clear();
      if (e.type == engine::event::stage_entered) {
        stage = text_of(e.data, "stage");
        since = e.at;
        in_stage.emplace(stage, 0);
        if (int_of(e.data, "repetition") > 0) reps[stage]++;
      }
    } else if (e.type == engine::event::step_waiting || e.type == engine::event::step_opened) {
      reached.insert(e.step);
    } else if (e.type == engine::event::step_completed) {
      completed.insert(e.step);
      completions_[e.step]++;
    } else if (e.type == engine::event::step_refused) {
      add_problem(e.step, "refused", text_of(e.data, "reason"));
    } else if (e.type == engine::event::step_failed) {
      const json::value* refused = e.data.if_contains("refused");
      add_problem(e.step, refused && refused->is_bool() && refused->get_bool() ? "refused" : "failed", text_of(e.data, "error"));
    } else if (e.type == engine::event::charge_posted) {
      ChargeTally& c = charges_[text_of(e.data, "code")];
      c.postings++;
      c.exact.insert(text_of(e.data, "description"));
      c.descriptions[reason_pattern(text_of(e.data, "description"))]++;
      c.units += int_of(e.data, "units", 1);
      c.amount_cents += int_of(e.data, "amount_cents");
    }
  }
  if (!stage.empty() && !run.events.empty()) in_stage[stage] += run.events.back().at - since;  // still active (cannot happen)
  for (const auto& [id, time] : in_stage) stage_times_[id].push_back(time);
  for (const auto& [id, n] : reps) {
    repetitions_[id] += n;
    max_repetitions_[id] = std::max(max_repetitions_[id], n);
  }
  for (const auto& id : reached) reached_[id]++;
  for (const auto& id : completed) completed_[id]++;
  for (const auto& r : run.rejections) add_problem(r.step, r.kind, r.reason);

  std::set<std::string> templates;
  for (const auto& m : run.messages) {
    MessageTally& t = messages_[m.template_name];
    t.messages++;
    t.recipients.insert(m.recipient);
    templates.insert(m.template_name);
  }
  for (const auto& name : templates) messages_[name].patients++;

  if (run.stuck) stuck_.push_back({run.patient_id, run.stuck->step, run.stuck->attempts, run.stuck->reason});
}

Summary SummaryBuilder::finish(RunInfo info) const {
  Summary s;
  s.run = std::move(info);
  for (const auto& [key, times] : outcomes_)
    s.outcomes.push_back({key.first, key.second, static_cast<int>(times.size()), median_of(times), *std::max_element(times.begin(), times.end())});
  std::stable_sort(s.outcomes.begin(), s.outcomes.end(), [](const OutcomeRow& a, const OutcomeRow& b) { return a.patients > b.patients; });

  for (const auto& stage : workflow_.stages) {
    StageRow row{stage.id, stage.title, stage.repeat.has_value()};
    if (auto it = stage_times_.find(stage.id); it != stage_times_.end()) {
      row.patients = static_cast<int>(it->second.size());
      row.median = median_of(it->second);
      row.max = *std::max_element(it->second.begin(), it->second.end());
    }
    if (auto it = repetitions_.find(stage.id); it != repetitions_.end()) row.repetitions = it->second;
    if (auto it = max_repetitions_.find(stage.id); it != max_repetitions_.end()) row.max_repetitions = it->second;
    s.stages.push_back(std::move(row));
  }

  for (const auto& step : workflow_.steps) {
    auto count = [](const std::map<std::string, int>& m, const std::string& id) {
      auto it = m.find(id);
      return it == m.end() ? 0 : it->second;
    };
    StepRow row{step.id, step.stage, step.kind == workflow::StepKind::automatic, count(reached_, step.id), count(completed_, step.id), 0};
    if (auto it = completions_.find(step.id); it != completions_.end()) row.completions = it->second;
    if (row.reached == 0 && row.completed == 0) s.never_reached.push_back(step.id);
    else if (row.completed == 0) s.reached_never_completed.push_back(step.id);
    s.steps.push_back(std::move(row));
  }

  auto step_index = [this](const std::string& id) {
    const workflow::StepDef* step = workflow_.find_step(id);
    return step ? step->index : workflow_.steps.size();
  };
  for (const auto& [key, t] : problems_)
    s.problems.push_back({std::get<0>(key), std::get<1>(key), std::get<2>(key), t.example, t.count, static_cast<int>(t.variants.size())});
  std::stable_sort(s.problems.begin(), s.problems.end(), [&](const ProblemRow& a, const ProblemRow& b) {
    auto ia = step_index(a.step), ib = step_index(b.step);
    return ia != ib ? ia < ib : a.count > b.count;
  });

  for (const auto& [code, c] : charges_) {
    auto common = c.descriptions.begin();
    for (auto it = c.descriptions.begin(); it != c.descriptions.end(); ++it)
      if (it->second > common->second) common = it;
    std::string description = c.exact.size() == 1 ? *c.exact.begin() : common == c.descriptions.end() ? std::string() : common->first;
    if (c.descriptions.size() > 1) description += " (+" + std::to_string(c.descriptions.size() - 1) + (c.descriptions.size() == 2 ? " other description)" : " other descriptions)");
    s.charges.push_back({code, description, c.postings, c.units, c.amount_cents});
  }
  for (const auto& [name, t] : messages_) {
    std::string to;
    for (const auto& r : t.recipients) to += (to.empty() ? "" : ", ") + r;
    s.messages.push_back({name, to, t.messages, t.patients});
  }
  s.stuck = stuck_;
  std::stable_sort(s.stuck.begin(), s.stuck.end(), [](const StuckRow& a, const StuckRow& b) { return a.patient_id < b.patient_id; });
  return s;
}

}  // namespace clinicflow::cli::sim
