#pragma once
// What a simulation found, added up over every case from the cases' own records: their events
// (stage_entered, step_waiting/step_opened/step_completed, step_refused/step_failed,
// charge_posted, case_ended) and their outbox messages. Rows come in a fixed order (workflow order,
// then counts, then names), so the same runs always give the same summary.
#include "sim_driver.hpp"
#include "workflow/model.hpp"

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace clinicflow::cli::sim {

struct RunInfo {
  std::string workflow_id;
  int workflow_version = 0;
  std::string workflow_title;
  std::string workflow_file;
  std::string config_file;
  std::string profile_file;  // empty: none
  std::uint64_t seed = 0;
  int patients = 0;
  int attempts_per_step = 0;
  TimePoint clock_start = 0, clock_end = 0;
};

struct OutcomeRow {
  std::string outcome, reason;
  int patients = 0;
  Duration median = 0, max = 0;  // from the case's opening to its end
};

struct StageRow {
  std::string id, title;
  bool repeated = false;
  int patients = 0;  // cases that entered the stage
  Duration median = 0, max = 0;  // time spent in the stage per patient, over those who entered it
  std::int64_t repetitions = 0;  // repeated stages: repetitions started, over all cases
  int max_repetitions = 0;       // ... the most on one case
};

struct StepRow {
  std::string id, stage;
  bool automatic = false;
  int reached = 0;    // cases on which it waited or opened
  int completed = 0;  // cases on which it was completed
  std::int64_t completions = 0;  // times it was completed, over all cases (repeated stages: once per repetition)
};

// Submissions turned down, by step, kind and reason. Reasons differing only in their numbers
// ("systolic 187 mmHg ..." and "systolic 163 mmHg ...") are counted together under `pattern`.
struct ProblemRow {
  std::string step;
  std::string kind;     // refused (a plugin rule), failed (a plugin error), invalid (the form's checks), error
  std::string pattern;  // the reason with every number written as #
  std::string example;  // the first reason seen
  int count = 0;
  int variants = 0;  // distinct reasons under the pattern
};

struct ChargeRow {
  std::string code;
  // The description when all postings share one; else the most common, with numbers as #
  // ("session # of #"), and "(+N other descriptions)" when even those differ.
  std::string description;
  int postings = 0;
  std::int64_t units = 0, amount_cents = 0;
};

struct MessageRow {
  std::string template_name;
  std::string recipients;  // the `to` of its messages, joined
  int messages = 0, patients = 0;
};

struct StuckRow {
  std::string patient_id, step;
  int attempts = 0;
  std::string reason;
};

struct Summary {
  RunInfo run;
  std::vector<OutcomeRow> outcomes;  // most patients first
  std::vector<StageRow> stages;      // workflow order
  std::vector<StepRow> steps;        // workflow order
  std::vector<ProblemRow> problems;  // step order, then most first
  std::vector<ChargeRow> charges;    // by code
  std::vector<MessageRow> messages;  // by template name
  std::vector<StuckRow> stuck;       // patient order
  std::vector<std::string> never_reached;           // steps no case waited at or opened
  std::vector<std::string> reached_never_completed;  // steps opened somewhere but completed nowhere
};

class SummaryBuilder {
 public:
  explicit SummaryBuilder(const workflow::Workflow& workflow);
  void add(const CaseRun& run);
  Summary finish(RunInfo info) const;

 private:
  struct ProblemTally {
    std::string example;
    int count = 0;
    std::set<std::string> variants;
  };
  struct ChargeTally {
    std::set<std::string> exact;              // every description seen
    std::map<std::string, int> descriptions;  // description pattern -> postings
    int postings = 0;
    std::int64_t units = 0, amount_cents = 0;
  };
  struct MessageTally {
    std::set<std::string> recipients;
    int messages = 0, patients = 0;
  };
  void add_problem(const std::string& step, const std::string& kind, const std::string& reason);

  const workflow::Workflow& workflow_;
  std::map<std::pair<std::string, std::string>, std::vector<Duration>> outcomes_;  // (outcome, reason) -> journey times
  std::map<std::string, std::vector<Duration>> stage_times_;
  std::map<std::string, std::int64_t> repetitions_;
  std::map<std::string, int> max_repetitions_;
  std::map<std::string, int> reached_, completed_;
  std::map<std::string, std::int64_t> completions_;
  std::map<std::tuple<std::string, std::string, std::string>, ProblemTally> problems_;  // step, kind, pattern
  std::map<std::string, ChargeTally> charges_;
  std::map<std::string, MessageTally> messages_;
  std::vector<StuckRow> stuck_;
};

// "systolic 187 mmHg is above 140" -> "systolic # mmHg is above #"
std::string reason_pattern(const std::string& reason);

}  // namespace clinicflow::cli::sim
