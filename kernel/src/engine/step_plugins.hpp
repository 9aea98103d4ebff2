#pragma once
// What the engine asks of plugins, whatever hosts them: the plugin host (shared libraries) in
// the server, an in-process fake in tests. A plugin sees read-only case data and returns a
// decision; the engine records it as events.
#include "util/time.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace clinicflow::engine {

struct PluginCall {
  std::string_view plugin;
  std::string_view case_id;
  std::string_view step;
  const boost::json::object& settings;   // the step's [step.settings]
  const boost::json::object& case_data;  // step id -> completed data, so far
  const boost::json::object* submitted;  // a task's validated submission; null for automatic steps
  int repetition;                        // of the step's stage; 0 outside repeated stages
  TimePoint now;
};

struct PluginDecision {
  enum class Status {
    ok,       // automatic: the step is done with `data`; task: the submission stands, `data` is added to it
    refused,  // a rule refused it; `reason` says which and why
    failed,   // the plugin could not decide; `reason` is the error. The step stays open for a retry
  };
  PluginDecision() = default;
  PluginDecision(Status s, boost::json::object d = {}, std::string r = {}, boost::json::array c = {})
      : status(s), data(std::move(d)), reason(std::move(r)), charges(std::move(c)) {}

  Status status = Status::failed;
  boost::json::object data;
  std::string reason;
  // Billing: each {"code", "description", "amount_cents", "units", "modifiers"} becomes a
  // `charge_posted` event on the case (ok decisions only).
  boost::json::array charges;
};

class StepPlugins {
 public:
  virtual ~StepPlugins() = default;
  // nullopt when the plugin can be called; otherwise why not ("failed to load: ...").
  virtual std::optional<std::string> unavailable(std::string_view plugin) const = 0;
  // May throw: the engine treats an exception like Status::failed.
  virtual PluginDecision call(const PluginCall& call) = 0;
};

}  // namespace clinicflow::engine
