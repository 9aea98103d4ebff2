// Clinicflow plugin SDK — a header-only C++ layer over the C ABI in <clinicflow/plugin.h>.
//
// SPDX-License-Identifier: MIT
// Copyright (c) 2026 the Clinicflow authors. Permission is hereby granted, free of charge, to any
// person obtaining a copy of this header, to deal in it without restriction, including the rights
// to use, copy, modify, merge, publish, distribute, sublicense and/or sell copies. THE HEADER IS
// PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND. Plugins built with it may be closed-source.
//
// Write a class deriving from RoutePlugin, BillingPlugin or MessagingPlugin, give it
//   static clinicflow::Manifest manifest();
//   explicit MyPlugin(const clinicflow::Settings& settings);   // may throw: creation fails
// and export it with CLINICFLOW_PLUGIN(MyPlugin) in exactly one source file. Link Boost.JSON.
//
// The kernel gives a plugin read-only case data and records what it returns as events on the
// case. A plugin never touches the database. Exceptions thrown from any method are caught at the
// boundary and reported to the kernel as a failure of that call; the server keeps running.
#pragma once

#include <clinicflow/plugin.h>

#include <boost/json.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace clinicflow {

namespace json = boost::json;

// ---------------------------------------------------------------------------------- manifest

struct SettingSpec {
  std::string name;
  std::string type;  // "string" | "integer" | "number" | "boolean" | "array" | "table"
  json::value default_value;  // null: the setting is required
  std::string description;
};

struct Manifest {
  std::string name;  // lower-case letters, digits and '_'; must match [plugins.<name>]
  std::string kind;  // "route" | "billing" | "messaging"
  std::string version;
  std::string description;
  std::vector<SettingSpec> settings;
};

// The plugin's settings: the server configuration's [plugins.<name>] table, already checked by
// the kernel against the manifest (types) and completed with its defaults.
class Settings {
 public:
  explicit Settings(json::object values) : values_(std::move(values)) {}
  const json::object& values() const { return values_; }
  bool has(std::string_view name) const { return values_.contains(name); }
  std::string string(std::string_view name) const { return std::string(get(name, &json::value::is_string, "a string").get_string()); }
  std::int64_t integer(std::string_view name) const { return get(name, &json::value::is_int64, "a whole number").get_int64(); }
  double number(std::string_view name) const { return get(name, &json::value::is_number, "a number").to_number<double>(); }
  bool boolean(std::string_view name) const { return get(name, &json::value::is_bool, "true or false").get_bool(); }
  const json::array& array(std::string_view name) const { return get(name, &json::value::is_array, "a list").get_array(); }
  const json::object& table(std::string_view name) const { return get(name, &json::value::is_object, "a table").get_object(); }

 private:
  const json::value& get(std::string_view name, bool (json::value::*is)() const noexcept, const char* what) const {
    const json::value* v = values_.if_contains(name);
    if (!v || !(v->*is)()) throw std::invalid_argument("setting '" + std::string(name) + "' must be " + what);
    return *v;
  }
  json::object values_;
};

// ---------------------------------------------------------------------------------- steps

// A form field a route plugin adds to its step (same keys as [[step.field]] in a workflow):
// {"name", "type", "required", "min", "max", "values", "unit", "help", "label"}.
using FieldSpec = json::object;

// What the kernel sends for a step: "review" for a task that staff submitted, "run" for an
// automatic step.
struct StepRequest {
  std::string case_id;
  std::string step;
  json::object step_settings;  // the workflow's [step.settings]
  json::object case_data;      // step id -> that step's latest completed data
  std::optional<json::object> submitted;  // review only: the validated form
  int repetition = 0;                     // of the step's stage (1-based); 0 outside repeated stages
  std::string now;                        // RFC 3339 UTC

  // The value of `field` in `step`'s data, or nullptr.
  const json::value* find(std::string_view step_id, std::string_view field) const {
    const json::value* s = case_data.if_contains(step_id);
    return s && s->is_object() ? s->get_object().if_contains(field) : nullptr;
  }
  // A submitted value (review), or nullptr.
  const json::value* input(std::string_view field) const { return submitted ? submitted->if_contains(field) : nullptr; }
  static std::optional<double> as_number(const json::value* v) {
    return v && v->is_number() ? std::optional<double>(v->to_number<double>()) : std::nullopt;
  }
};

// One charge on the case. Amounts are integer cents.
struct Charge {
  std::string code;  // e.g. "96365", "G2082", "J0013"
  std::string description;
  std::int64_t amount_cents = 0;
  std::int64_t units = 1;
  std::vector<std::string> modifiers;  // e.g. {"KX"}
};

struct StepResult {
  enum class Status { ok, refused, failed };
  Status status = Status::ok;
  json::object data;  // derived values recorded with the step (a task's own input always wins)
  std::string reason;  // refused or failed: which rule and why, in plain words
  std::vector<Charge> charges;

  static StepResult ok(json::object data = {}) { return {Status::ok, std::move(data), "", {}}; }
  static StepResult refused(std::string reason, json::object data = {}) { return {Status::refused, std::move(data), std::move(reason), {}}; }
  static StepResult failed(std::string reason) { return {Status::failed, {}, std::move(reason), {}}; }
};

// ---------------------------------------------------------------------------------- messages

struct Message {
  std::string id;  // idempotency key: the same message always has the same id, across retries
  std::string case_id;
  std::string template_name;
  std::string recipient;  // who it is for: "patient", "support_person", "referring_provider", ...
  std::string address;    // where to (rendered from the template; may be empty for some channels)
  std::string subject;
  std::string body;
  int attempt = 1;  // 1 on the first try
};

struct Delivery {
  enum class Status { delivered, retry, failed };  // retry: a temporary problem; failed: never retry
  Status status = Status::delivered;
  std::string error;
  static Delivery delivered() { return {Status::delivered, ""}; }
  static Delivery retry(std::string error) { return {Status::retry, std::move(error)}; }
  static Delivery failed(std::string error) { return {Status::failed, std::move(error)}; }
};

// ---------------------------------------------------------------------------------- plugin kinds

class Plugin {
 public:
  virtual ~Plugin() = default;
  // Dispatches one ABI call; the kinds below implement it. Returns the JSON answer.
  virtual json::value handle(std::string_view method, const json::object& request) = 0;
};

namespace detail {
inline json::object to_json(const StepResult& r) {
  json::array charges;
  for (const auto& c : r.charges) {
    json::array modifiers;
    for (const auto& m : c.modifiers) modifiers.emplace_back(m);
    charges.push_back({{"code", c.code}, {"description", c.description}, {"amount_cents", c.amount_cents},
                       {"units", c.units}, {"modifiers", std::move(modifiers)}});
  }
  const char* status = r.status == StepResult::Status::ok ? "ok" : r.status == StepResult::Status::refused ? "refused" : "failed";
  return {{"status", status}, {"data", r.data}, {"reason", r.reason}, {"charges", std::move(charges)}};
}

inline std::string text(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

inline StepRequest step_request(const json::object& o) {
  StepRequest r;
  r.case_id = text(o, "case_id");
  r.step = text(o, "step");
  r.now = text(o, "now");
  if (auto v = o.if_contains("step_settings"); v && v->is_object()) r.step_settings = v->get_object();
  if (auto v = o.if_contains("case_data"); v && v->is_object()) r.case_data = v->get_object();
  if (auto v = o.if_contains("submitted"); v && v->is_object()) r.submitted = v->get_object();
  if (auto v = o.if_contains("repetition"); v && v->is_int64()) r.repetition = static_cast<int>(v->get_int64());
  return r;
}
}  // namespace detail

// Route and billing plugins: they take part in workflow steps.
class StepPlugin : public Plugin {
 public:
  // Form fields this plugin adds to a task step that names it (e.g. a route's session vitals).
  virtual std::vector<FieldSpec> fields(const json::object& /*step_settings*/) { return {}; }
  // A task step naming this plugin was submitted: accept (adding derived data), refuse, or fail.
  virtual StepResult review(const StepRequest&) { return StepResult::ok(); }
  // An automatic step naming this plugin opened.
  virtual StepResult run(const StepRequest&) { return StepResult::failed("this plugin does not run automatic steps"); }

  json::value handle(std::string_view method, const json::object& request) override {
    if (method == "fields") {
      const json::value* s = request.if_contains("step_settings");
      json::array out;
      for (auto& f : fields(s && s->is_object() ? s->get_object() : json::object{})) out.push_back(std::move(f));
      return json::object{{"fields", std::move(out)}};
    }
    if (method == "review") return detail::to_json(review(detail::step_request(request)));
    if (method == "run") return detail::to_json(run(detail::step_request(request)));
    throw std::invalid_argument("unknown method '" + std::string(method) + "'");
  }
};

class RoutePlugin : public StepPlugin {};
class BillingPlugin : public StepPlugin {};

class MessagingPlugin : public Plugin {
 public:
  // Delivers one message on this plugin's channel. Called again with the same id after a retry.
  virtual Delivery deliver(const Message& message) = 0;

  json::value handle(std::string_view method, const json::object& request) override {
    if (method != "deliver") throw std::invalid_argument("unknown method '" + std::string(method) + "'");
    Message m;
    m.id = detail::text(request, "id");
    m.case_id = detail::text(request, "case_id");
    m.template_name = detail::text(request, "template");
    m.recipient = detail::text(request, "recipient");
    m.address = detail::text(request, "address");
    m.subject = detail::text(request, "subject");
    m.body = detail::text(request, "body");
    if (auto v = request.if_contains("attempt"); v && v->is_int64()) m.attempt = static_cast<int>(v->get_int64());
    Delivery d = deliver(m);
    const char* status = d.status == Delivery::Status::delivered ? "delivered" : d.status == Delivery::Status::retry ? "retry" : "failed";
    return json::object{{"status", status}, {"error", d.error}};
  }
};

// ---------------------------------------------------------------------------------- ABI glue

namespace detail {

inline char* copy_out(std::string_view s) {
  char* out = static_cast<char*>(std::malloc(s.size() + 1));
  if (out) {
    std::memcpy(out, s.data(), s.size());
    out[s.size()] = '\0';
  }
  return out;
}

inline std::string manifest_json(const Manifest& m) {
  json::array settings;
  for (const auto& s : m.settings)
    settings.push_back({{"name", s.name}, {"type", s.type}, {"default", s.default_value}, {"description", s.description}});
  return json::serialize(json::object{{"name", m.name},
                                      {"kind", m.kind},
                                      {"version", m.version},
                                      {"abi", std::to_string(CLINICFLOW_ABI_MAJOR) + "." + std::to_string(CLINICFLOW_ABI_MINOR)},
                                      {"description", m.description},
                                      {"settings", std::move(settings)}});
}

template <class P>
void* create(const char* settings_json, char** error) {
  try {
    json::value v = json::parse(settings_json ? settings_json : "{}");
    if (!v.is_object()) throw std::invalid_argument("settings must be a JSON object");
    return static_cast<Plugin*>(new P(Settings(std::move(v.as_object()))));
  } catch (const std::exception& e) {
    if (error) *error = copy_out(e.what());
  } catch (...) {
    if (error) *error = copy_out("unknown error");
  }
  return nullptr;
}

inline int call(void* instance, const char* method, const char* request_json, char** response) {
  try {
    json::value request = json::parse(request_json ? request_json : "{}");
    if (!request.is_object()) throw std::invalid_argument("the request must be a JSON object");
    json::value answer = static_cast<Plugin*>(instance)->handle(method ? method : "", request.as_object());
    *response = copy_out(json::serialize(answer));
    return 0;
  } catch (const std::exception& e) {
    *response = copy_out(e.what());
  } catch (...) {
    *response = copy_out("unknown error");
  }
  return 1;
}

}  // namespace detail
}  // namespace clinicflow

// Exports PluginClass through the C ABI. Use once per plugin library, at namespace scope.
#define CLINICFLOW_PLUGIN(PluginClass)                                                                        \
  extern "C" CLINICFLOW_EXPORT uint32_t clinicflow_plugin_abi(void) { return CLINICFLOW_ABI_VERSION; }       \
  extern "C" CLINICFLOW_EXPORT const char* clinicflow_plugin_manifest(void) {                                \
    static const std::string manifest = ::clinicflow::detail::manifest_json(PluginClass::manifest());        \
    return manifest.c_str();                                                                                 \
  }                                                                                                          \
  extern "C" CLINICFLOW_EXPORT void* clinicflow_plugin_create(const char* settings_json, char** error) {     \
    return ::clinicflow::detail::create<PluginClass>(settings_json, error);                                  \
  }                                                                                                          \
  extern "C" CLINICFLOW_EXPORT void clinicflow_plugin_destroy(void* instance) {                              \
    delete static_cast<::clinicflow::Plugin*>(instance);                                                     \
  }                                                                                                          \
  extern "C" CLINICFLOW_EXPORT int clinicflow_plugin_call(void* instance, const char* method,               \
                                                          const char* request_json, char** response) {       \
    return ::clinicflow::detail::call(instance, method, request_json, response);                             \
  }                                                                                                          \
  extern "C" CLINICFLOW_EXPORT void clinicflow_plugin_free(char* text) { std::free(text); }
