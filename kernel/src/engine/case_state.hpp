#pragma once
// A case's current state, as a fold over its events. The fold knows nothing of workflows or
// plugins: every decision was made before the event was written, so replaying the log always
// rebuilds exactly the stored projection.
#include "store/case_store.hpp"

#include <boost/json/object.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace clinicflow::engine {

// Event types. Data keys are documented in docs/architecture.md.
namespace event {
inline constexpr const char* case_opened = "case_opened";        // workflow, version, patient_id
inline constexpr const char* stage_entered = "stage_entered";    // stage, repetition
inline constexpr const char* step_waiting = "step_waiting";      // opens_at
inline constexpr const char* step_opened = "step_opened";        // due?, repetition
inline constexpr const char* step_overdue = "step_overdue";      // due
inline constexpr const char* step_completed = "step_completed";  // data (the submitted, validated form)
inline constexpr const char* step_refused = "step_refused";      // reason (a plugin rule refused a submission)
inline constexpr const char* step_failed = "step_failed";        // error (a plugin failed; the step stays open)
inline constexpr const char* case_ended = "case_ended";          // outcome, reason
inline constexpr const char* charge_posted = "charge_posted";    // code, description, amount_cents, units, modifiers
inline constexpr const char* message_queued = "message_queued";  // message_id, template, via, to, not_before
}  // namespace event

struct ActiveStep {
  std::string step;
  bool waiting = false;  // true: not open yet, opens at `opens_at`
  TimePoint since = 0;   // when it started waiting or opened
  std::optional<TimePoint> opens_at;
  std::optional<TimePoint> due;
  bool overdue = false;
  int repetition = 0;  // of its stage, 1-based; 0 outside repeated stages
  std::string last_error;
};

struct CaseState {
  std::string case_id;
  std::string patient_id;
  std::string workflow_id;
  int workflow_version = 0;
  std::string status = "active";  // active | completed | closed
  std::string outcome;            // completed | declined | closed, once ended
  std::string reason;
  std::string stage;
  int repetition = 0;  // of the current stage
  std::int64_t revision = 0;
  TimePoint created_at = 0, updated_at = 0;
  std::vector<ActiveStep> active;
  boost::json::object data;                   // step id -> its latest completed data
  std::map<std::string, TimePoint> completed;  // step id -> when it last completed

  const ActiveStep* find_active(std::string_view step) const;
};

void apply(CaseState& state, const std::string& case_id, const store::EventRecord& event);
CaseState replay(const std::string& case_id, const std::vector<store::EventRecord>& events);

// The state as stored in the projection row; from_json reads it back.
std::string to_json_text(const CaseState& state);
CaseState from_json(const boost::json::object& json);

// The projection row's columns; `state` is left empty (the row stores to_json_text).
store::CaseRecord to_columns(const CaseState& state);
std::vector<store::TimerRecord> pending_timers(const CaseState& state);

}  // namespace clinicflow::engine
