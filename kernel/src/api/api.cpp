#include "api/api.hpp"

#include "engine/case_view.hpp"
#include "plugins/plugin_host.hpp"
#include "workflow/form.hpp"

#include <boost/json/serialize.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <future>

namespace clinicflow::api {
namespace json = boost::json;

// ------------------------------------------------------------------------------ state

struct Api::Session {
  std::uint64_t connection_id = 0;
  std::weak_ptr<Connection> connection;
  // Touched only by calls for this connection (which never overlap); `signed_in` mirrors it for
  // authenticated(), which the transport may call from elsewhere.
  std::optional<Identity> identity;
  std::atomic<bool> signed_in{false};
  std::uint64_t generation = 0;  // the auth store's generation when the token was last checked
  std::string login_problem;     // why the bearer token was not accepted
  std::set<std::string> subscriptions;
};

struct Api::Registry {
  struct Subscription {
    std::uint64_t connection_id = 0;
    std::weak_ptr<Connection> connection;
    std::optional<std::string> case_id;  // none: every case
    std::string token_id;                // revoking it ends the subscription
  };
  mutable std::mutex mutex;
  std::uint64_t next_id = 1;
  std::map<std::string, Subscription> subscriptions;
};

namespace {

const std::vector<std::string> kMethods = [] {
  std::vector<std::string> m{"auth.login",     "auth.token.create", "auth.token.revoke", "auth.token.list", "workflow.list",
                             "workflow.get",   "patient.create",    "patient.get",       "case.open",       "case.get",
                             "case.submit",    "case.list",         "case.history",      "case.close",      "case.retry",
                             "subscribe",      "unsubscribe",       "clock.now",         "clock.advance",   "plugin.list",
                             "billing.summary", "messages.list"};
  std::sort(m.begin(), m.end());
  return m;
}();

// Methods whose every call is audited: writes, and reads of a case or patient (HIPAA). Any other
// method is audited only when refused (-32003).
const std::set<std::string> kAudited{"auth.login",  "auth.token.create", "auth.token.revoke", "auth.token.list",
                                     "patient.create", "patient.get",    "case.open",         "case.get",
                                     "case.submit", "case.list",         "case.history",      "case.close",
                                     "case.retry",  "subscribe",         "clock.advance",     "billing.summary",
                                     "messages.list"};

const std::set<std::string> kAdminOnly{"auth.token.create", "auth.token.revoke", "auth.token.list", "clock.advance"};

constexpr std::int64_t kMaxAdvanceSeconds = 10LL * 366 * 24 * 3600;  // ten years

json::array string_array(const std::vector<std::string>& items) {
  json::array out;
  for (const auto& s : items) out.emplace_back(s);
  return out;
}

json::object transition_json(const workflow::Transition& t) {
  json::object out;
  if (t.when) out["when"] = t.when->text();
  if (t.outcome) {
    out["outcome"] = std::string(workflow::to_string(*t.outcome));
    if (!t.reason.empty()) out["reason"] = t.reason;
  } else {
    out["goto"] = t.go_to;
  }
  return out;
}

}  // namespace

json::object workflow_json(const workflow::Workflow& wf) {
  json::array stages, steps;
  for (const auto& s : wf.stages) {
    json::object stage{{"id", s.id}, {"title", s.title}};
    if (s.repeat) {
      json::object r{{"times", s.repeat->times}};
      if (s.repeat->min_interval) r["min_interval"] = format_duration(*s.repeat->min_interval);
      if (s.repeat->max_interval) r["max_interval"] = format_duration(*s.repeat->max_interval);
      if (s.repeat->until) r["until"] = s.repeat->until->text();
      stage["repeat"] = std::move(r);
    }
    stages.push_back(std::move(stage));
  }
  for (const auto& s : wf.steps) {
    json::object step{{"id", s.id},
                      {"title", s.title},
                      {"stage", s.stage},
                      {"kind", s.kind == workflow::StepKind::automatic ? "automatic" : "task"},
                      {"roles", string_array(s.roles)},
                      {"schema", s.schema}};
    if (!s.plugin.empty()) step["plugin"] = s.plugin;
    if (s.due) step["due"] = format_duration(*s.due);
    if (s.open_delay) step["delay"] = format_duration(*s.open_delay);
    if (!s.open_after.empty()) step["after"] = s.open_after;
    json::array messages;
    for (const auto& m : s.messages) {
      json::object msg{{"on", m.on}, {"template", m.template_name}, {"via", m.via}, {"to", m.to}};
      if (m.when) msg["when"] = m.when->text();
      if (m.delay) msg["delay"] = format_duration(*m.delay);
      if (m.before_open) msg["before_open"] = format_duration(*m.before_open);
      messages.push_back(std::move(msg));
    }
    step["messages"] = std::move(messages);
    json::array branches;
    for (const auto& b : s.branches) branches.push_back(transition_json(b));
    step["branches"] = std::move(branches);
    step["next"] = transition_json(s.next);
    steps.push_back(std::move(step));
  }
  return {{"id", wf.id},           {"version", wf.version}, {"title", wf.title},
          {"description", wf.description}, {"stages", std::move(stages)}, {"steps", std::move(steps)}};
}

// ------------------------------------------------------------------------------ Api

Api::Api(engine::Engine& engine, store::SqliteCaseStore& store, SqliteAuthStore& auth, const workflow::WorkflowSet& workflows,
         engine::Clock& clock, engine::VirtualClock* virtual_clock, const plugins::PluginHost* plugins, ApiOptions options)
    : engine_(engine),
      store_(store),
      auth_(auth),
      workflows_(workflows),
      clock_(clock),
      virtual_clock_(virtual_clock),
      plugins_(plugins),
      options_(std::move(options)),
      registry_(std::make_shared<Registry>()) {
  // Called in commit order under the engine's lock: build the frames and queue them, never block.
  engine_.add_listener([registry = registry_](const engine::CaseState& state, const std::vector<store::EventRecord>& events) {
    std::lock_guard lock(registry->mutex);
    if (registry->subscriptions.empty()) return;
    for (const auto& e : events) {
      json::object event = engine::event_view(e);
      event["case_id"] = state.case_id;
      for (const auto& [id, sub] : registry->subscriptions) {
        if (sub.case_id && *sub.case_id != state.case_id) continue;
        auto connection = sub.connection.lock();
        if (!connection) continue;
        try {
          connection->send(json::serialize(json::object{
              {"jsonrpc", "2.0"}, {"method", "event"}, {"params", {{"subscription", id}, {"event", event}}}}));
        } catch (const std::exception& ex) {
          spdlog::warn("subscription {}: cannot queue an event: {}", id, ex.what());
        }
      }
    }
  });
}

Api::~Api() {
  std::lock_guard lock(registry_->mutex);
  registry_->subscriptions.clear();  // the listener stays registered with the engine, now idle
}

const std::vector<std::string>& Api::methods() { return kMethods; }

std::size_t Api::subscription_count() const {
  std::lock_guard lock(registry_->mutex);
  return registry_->subscriptions.size();
}

std::shared_ptr<Api::Session> Api::session_of(const Connection& connection) const {
  std::lock_guard lock(sessions_mutex_);
  auto it = sessions_.find(connection.id());
  return it == sessions_.end() ? nullptr : it->second;
}

void Api::on_open(const std::shared_ptr<Connection>& connection, std::optional<std::string> bearer_token) {
  auto session = std::make_shared<Session>();
  session->connection_id = connection->id();
  session->connection = connection;
  {
    std::lock_guard lock(sessions_mutex_);
    sessions_[connection->id()] = session;
  }
  if (!bearer_token) return;
  std::uint64_t generation = auth_.generation();
  auto identity = auth_.verify(*bearer_token);
  if (!identity) {
    session->login_problem = "the bearer token was not accepted";
    audit(*session, "auth.login", "", code::not_authenticated);
    return;
  }
  login(*session, std::move(identity));
  session->generation = generation;
  audit(*session, "auth.login", session->identity->token_id, 0);
}

bool Api::authenticated(const Connection& connection) const {
  auto session = session_of(connection);
  return session && session->signed_in.load();
}

void Api::on_close(const Connection& connection) {
  std::shared_ptr<Session> session;
  {
    std::lock_guard lock(sessions_mutex_);
    auto it = sessions_.find(connection.id());
    if (it == sessions_.end()) return;
    session = it->second;
    sessions_.erase(it);
  }
  drop_subscriptions(*session);
}

void Api::on_message(const std::shared_ptr<Connection>& connection, std::string_view text, Reply reply) {
  auto session = session_of(*connection);
  if (!session) {
    on_open(connection, std::nullopt);  // a transport that skipped on_open still gets a session
    session = session_of(*connection);
  }
  handle_frame_async(
      text,
      [this, session, connection](const Request& request, Respond respond) { call(session, connection, request, std::move(respond)); },
      options_.limits, std::move(reply));
}

std::optional<std::string> Api::handle(const std::shared_ptr<Connection>& connection, std::string_view text) {
  std::promise<std::optional<std::string>> answer;
  auto future = answer.get_future();
  on_message(connection, text, [&answer](std::optional<std::string> a) { answer.set_value(std::move(a)); });
  return future.get();
}

void Api::login(Session& session, std::optional<Identity> identity) {
  if (session.identity && (!identity || identity->token_id != session.identity->token_id)) drop_subscriptions(session);
  session.identity = std::move(identity);
  session.signed_in = session.identity.has_value();
  if (session.identity) session.login_problem.clear();
}

void Api::drop_subscriptions(Session& session) {
  std::lock_guard lock(registry_->mutex);
  for (const auto& id : session.subscriptions) registry_->subscriptions.erase(id);
  session.subscriptions.clear();
}

void Api::audit(const Session& session, const std::string& method, const std::string& target, int code) {
  AuditEntry entry;
  entry.at = clock_.now();
  if (session.identity) {
    entry.user = session.identity->user;
    entry.token_id = session.identity->token_id;
  }
  entry.method = method;
  entry.target = target;
  entry.outcome = std::string(code_name(code));
  auth_.audit(std::move(entry));
}

engine::Actor Api::actor(const Session& session) const {
  return engine::Actor{"user:" + session.identity->user, session.identity->roles};
}

bool Api::allowed(const Identity& identity, const std::string& method) const {
  auto has = [&](const std::string& role) { return std::find(identity.roles.begin(), identity.roles.end(), role) != identity.roles.end(); };
  if (kAdminOnly.count(method) && !has("admin")) return false;
  for (const auto& role : identity.roles) {
    auto it = options_.role_methods.find(role);
    if (it == options_.role_methods.end()) continue;
    for (const auto& pattern : it->second) {
      if (pattern == "*" || pattern == method) return true;
      if (pattern.size() > 2 && pattern.ends_with(".*") && method.starts_with(pattern.substr(0, pattern.size() - 1))) return true;
    }
  }
  return false;
}

void Api::call(const std::shared_ptr<Session>& session_ptr, const std::shared_ptr<Connection>& connection, const Request& request,
               Respond respond) {
  Session& session = *session_ptr;
  const std::string& method = request.method;
  if (!std::binary_search(kMethods.begin(), kMethods.end(), method)) {
    std::string shown = method.size() > 64 ? method.substr(0, 64) + "..." : method;
    throw RpcError(code::method_not_found, "method not found: '" + shown + "'");
  }
  std::string target;
  if (method != "auth.login") {
    if (!session.identity)
      throw RpcError(code::not_authenticated,
                     "not authenticated: " + (session.login_problem.empty() ? std::string("call auth.login first")
                                                                            : session.login_problem + "; call auth.login"));
    // A revoked token stops working at its next request, on every live connection.
    std::uint64_t generation = auth_.generation();
    if (generation != session.generation) {
      if (!auth_.active(session.identity->token_id)) {
        audit(session, method, "", code::not_authenticated);
        spdlog::info("connection {}: token {} was revoked; signed out", session.connection_id, session.identity->token_id);
        login(session, std::nullopt);
        session.login_problem = "the token was revoked";
        throw RpcError(code::not_authenticated, "not authenticated: the token was revoked");
      }
      session.generation = generation;
    }
    if (!allowed(*session.identity, method)) {
      if (request.params && request.params->is_object())
        for (const char* key : {"case_id", "patient_id", "token_id"})
          if (auto v = request.params->get_object().if_contains(key); v && v->is_string()) target = std::string(v->get_string().subview().substr(0, 100));
      audit(session, method, target, code::forbidden);
      spdlog::info("user {} may not call {}", session.identity->user, method);
      throw RpcError(code::forbidden, "forbidden: your roles may not call " + method);
    }
  }
  Params params(request.params);
  auto target_ptr = std::make_shared<std::string>(std::move(target));
  // Audits the outcome, then answers. Runs on the committer thread for a write.
  Respond finish = [this, session_ptr, method, target_ptr, respond = std::move(respond)](Result result, std::exception_ptr error) {
    if (!error) {
      if (kAudited.count(method)) audit(*session_ptr, method, *target_ptr, 0);
      return respond(std::move(result), nullptr);
    }
    RpcError rpc = to_rpc_error(error);
    if (kAudited.count(method) || rpc.code() == code::forbidden) audit(*session_ptr, method, *target_ptr, rpc.code());
    if (session_ptr->identity)
      spdlog::debug("user {} {} {}: {}", session_ptr->identity->user, method, *target_ptr, code_name(rpc.code()));
    respond(nullptr, std::make_exception_ptr(std::move(rpc)));
  };
  try {
    if (run_write(session, method, params, target_ptr, finish)) return;
    Result result = run(session, connection, method, params, *target_ptr);
    finish(std::move(result), nullptr);
  } catch (...) {
    finish(nullptr, std::current_exception());
  }
}

namespace {

json::object summary_json(const store::CaseRecord& r) {
  engine::CaseState state = engine::from_json(r.state);
  json::array open_steps;
  for (const auto& a : state.active)
    if (!a.waiting) open_steps.emplace_back(a.step);
  return {{"case_id", r.case_id},
          {"patient_id", r.patient_id},
          {"workflow", r.workflow_id},
          {"version", r.workflow_version},
          {"status", r.status},
          {"stage", r.stage},
          {"revision", r.revision},
          {"open_steps", std::move(open_steps)},
          {"opened_at", format_rfc3339(r.created_at)},
          {"updated_at", format_rfc3339(r.updated_at)}};
}

json::object patient_json(const Patient& p) {
  json::object out{{"patient_id", p.patient_id},
                   {"given_name", p.given_name},
                   {"family_name", p.family_name},
                   {"birth_date", p.birth_date}};
  for (const char* key : {"phone", "email", "address"})
    if (auto v = p.contact.if_contains(key)) out[key] = *v;
  out["created_at"] = format_rfc3339(p.created_at);
  return out;
}

json::object message_json(const store::OutboxMessage& m, bool include_body) {
  json::object out{{"message_id", m.id},
                   {"template", m.template_name},
                   {"via", m.plugin},
                   {"to", m.recipient},
                   {"address", m.address},
                   {"subject", m.subject},
                   {"status", m.status},
                   {"attempts", m.attempts},
                   {"next_attempt_at", format_rfc3339(m.next_attempt_at)},
                   {"created_at", format_rfc3339(m.created_at)}};
  if (!m.last_error.empty()) out["last_error"] = m.last_error;
  if (m.delivered_at) out["delivered_at"] = format_rfc3339(*m.delivered_at);
  if (include_body) out["body"] = m.body;
  return out;
}

}  // namespace

std::string Api::view(const engine::CaseState& state) const {
  auto wf = engine_.workflow_of(state);
  if (!wf) throw RpcError::refused("workflow '" + state.workflow_id + "' version " + std::to_string(state.workflow_version) + " is not loaded");
  return engine::case_view_json(state, *wf);
}

bool Api::run_write(Session& session, const std::string& method, Params& p, const std::shared_ptr<std::string>& target,
                    Respond respond) {
  // Answers with the case view once the command is durable; a recorded refusal with its error.
  auto answer = [this, target, respond](const engine::CaseState* state, std::exception_ptr error) {
    if (state && target->empty()) *target = state->case_id;
    if (error) return respond(nullptr, error);
    try {
      respond(Result::serialized(std::make_shared<const std::string>(view(*state))), nullptr);
    } catch (...) {
      respond(nullptr, std::current_exception());
    }
  };
  auto case_id_param = [&]() {
    auto id = p.string("case_id", true, 100);
    if (id) *target = *id;
    return id.value_or("");
  };
  if (method == "patient.create") {
    Patient patient;
    auto given = p.string("given_name", true, 200);
    auto family = p.string("family_name", true, 200);
    auto birth = p.string("birth_date", true, 10);
    auto phone = p.string("phone", false, 50);
    auto email = p.string("email", false, 254);
    auto address = p.string("address", false, 500);
    if (birth) {
      auto days = parse_date(*birth);
      if (!days || birth->size() != 10) p.problem("birth_date", "must be a date YYYY-MM-DD");
      else if (*days * 86'400'000 > clock_.now()) p.problem("birth_date", "must not be in the future");
    }
    if (email && (email->find('@') == std::string::npos || email->front() == '@' || email->back() == '@'))
      p.problem("email", "must be an email address");
    p.finish();
    patient.given_name = *given;
    patient.family_name = *family;
    patient.birth_date = *birth;
    if (phone) patient.contact["phone"] = *phone;
    if (email) patient.contact["email"] = *email;
    if (address) patient.contact["address"] = *address;
    auth_.create_patient(std::move(patient), [target, respond, user = session.identity->user](const Patient* stored, std::exception_ptr error) {
      if (error) return respond(nullptr, error);
      *target = stored->patient_id;
      spdlog::info("patient {} created by user {}", stored->patient_id, user);
      respond(json::object{{"patient_id", stored->patient_id}}, nullptr);
    });
    return true;
  }
  if (method == "case.open") {
    auto patient_id = p.string("patient_id", true, 100);
    auto workflow = p.string("workflow", true, 100);
    auto version = p.integer("version", false, 1, 1'000'000);
    if (patient_id) *target = *patient_id;
    p.finish();
    if (!auth_.get_patient(*patient_id)) throw RpcError(code::not_found, "no patient '" + *patient_id + "'");
    target->clear();  // audited with the new case's id
    engine_.open_case(*patient_id, *workflow, version ? std::optional<int>(static_cast<int>(*version)) : std::nullopt, actor(session),
                      [answer, target, patient = *patient_id](const engine::CaseState* state, std::exception_ptr error) {
                        if (!state) *target = patient;
                        answer(state, error);
                      });
    return true;
  }
  if (method == "case.submit") {
    std::string case_id = case_id_param();
    auto step = p.string("step", true, 100);
    const json::object* data = p.object("data", true);
    auto revision = p.integer("revision", false, 1, INT64_MAX);
    p.finish();
    engine_.submit(case_id, *step, *data, actor(session), revision, [answer](const engine::CaseState* state, std::exception_ptr error) {
      if (error) try {
          std::rethrow_exception(error);
        } catch (const engine::EngineError& e) {
          if (e.kind() == engine::ErrorKind::invalid_data) {
            // Form problems name the field inside `data`, as a path from the params.
            std::vector<workflow::FieldProblem> fields;
            for (const auto& f : e.fields()) fields.push_back({"data." + f.field, f.problem});
            error = std::make_exception_ptr(RpcError::invalid_params(fields, e.what()));
          }
        } catch (...) {
        }
      answer(state, error);
    });
    return true;
  }
  if (method == "case.close") {
    std::string case_id = case_id_param();
    auto reason = p.string("reason", true, 1000);
    p.finish();
    engine_.close_case(case_id, *reason, actor(session), answer);
    return true;
  }
  if (method == "case.retry") {
    std::string case_id = case_id_param();
    auto step = p.string("step", true, 100);
    p.finish();
    engine_.retry_step(case_id, *step, actor(session), answer);
    return true;
  }
  return false;
}

Result Api::run(Session& session, const std::shared_ptr<Connection>& connection, const std::string& method, Params& p,
                std::string& target) {
  auto case_id_param = [&]() {
    auto id = p.string("case_id", true, 100);
    if (id) target = *id;
    return id.value_or("");
  };
  auto require_case = [this](const std::string& case_id) {
    auto state = engine_.get_case(case_id);
    if (!state) throw RpcError(code::not_found, "no case '" + case_id + "'");
    return state;
  };

  if (method == "auth.login") {
    auto token = p.string("token", true, 200);
    p.finish();
    std::uint64_t generation = auth_.generation();
    auto identity = auth_.verify(*token);
    if (!identity) throw RpcError(code::not_authenticated, "not authenticated: the token is unknown or revoked");
    login(session, std::move(identity));
    session.generation = generation;
    target = session.identity->token_id;
    return json::object{{"user", session.identity->user}, {"roles", string_array(session.identity->roles)}};
  }

  if (method == "workflow.list") {
    p.finish();
    json::array out;
    for (const auto& wf : workflows_.all()) out.push_back(json::object{{"id", wf->id}, {"version", wf->version}, {"title", wf->title}});
    return out;
  }
  if (method == "workflow.get") {
    auto id = p.string("id", true, 100);
    auto version = p.integer("version", false, 1, 1'000'000);
    p.finish();
    auto wf = workflows_.find(*id, version ? std::optional<int>(static_cast<int>(*version)) : std::nullopt);
    if (!wf) throw RpcError(code::not_found, "no workflow '" + *id + "'" + (version ? " version " + std::to_string(*version) : ""));
    return workflow_json(*wf);
  }

  if (method == "patient.get") {
    auto id = p.string("patient_id", true, 100);
    if (id) target = *id;
    p.finish();
    auto patient = auth_.get_patient(*id);
    if (!patient) throw RpcError(code::not_found, "no patient '" + *id + "'");
    return patient_json(*patient);
  }

  if (method == "case.get") {
    std::string case_id = case_id_param();
    p.finish();
    auto state = require_case(case_id);
    return Result::serialized(views_.get(state, [&] { return view(*state); }));
  }
  if (method == "case.list") {
    store::CaseQuery query;
    query.status = p.string("status", false, 20);
    query.stage = p.string("stage", false, 100);
    query.workflow_id = p.string("workflow", false, 100);
    auto limit = p.integer("limit", false, 1, 500);
    query.after = p.string("after", false, 100);
    if (query.status && *query.status != "active" && *query.status != "completed" && *query.status != "closed")
      p.problem("status", "must be one of active, completed, closed");
    p.finish();
    std::size_t want = static_cast<std::size_t>(limit.value_or(50));
    query.limit = want + 1;
    auto rows = store_.query_cases(query);
    json::array cases;
    for (std::size_t i = 0; i < rows.size() && i < want; ++i) cases.push_back(summary_json(rows[i]));
    json::object out{{"cases", std::move(cases)}};
    if (rows.size() > want) out["next"] = rows[want - 1].case_id;
    return out;
  }
  if (method == "case.history") {
    std::string case_id = case_id_param();
    p.finish();
    auto events = engine_.history(case_id);
    if (events.empty() && !engine_.get_case(case_id)) throw RpcError(code::not_found, "no case '" + case_id + "'");
    json::array out;
    for (const auto& e : events) out.push_back(engine::event_view(e));
    return out;
  }
  if (method == "subscribe") {
    auto case_id = p.string("case_id", false, 100);
    target = case_id.value_or("*");
    p.finish();
    if (case_id) require_case(*case_id);
    std::lock_guard lock(registry_->mutex);
    std::string id = "sub_" + std::to_string(registry_->next_id++);
    registry_->subscriptions[id] = {session.connection_id, connection, case_id, session.identity->token_id};
    session.subscriptions.insert(id);
    return json::object{{"subscription", id}};
  }
  if (method == "unsubscribe") {
    auto id = p.string("subscription", true, 100);
    p.finish();
    if (!session.subscriptions.count(*id)) throw RpcError(code::not_found, "no subscription '" + *id + "' on this connection");
    std::lock_guard lock(registry_->mutex);
    registry_->subscriptions.erase(*id);
    session.subscriptions.erase(*id);
    return json::object{{"subscription", *id}, {"unsubscribed", true}};
  }

  if (method == "clock.now") {
    p.finish();
    return json::object{{"now", format_rfc3339(clock_.now())}, {"virtual", virtual_clock_ != nullptr}};
  }
  if (method == "clock.advance") {
    auto seconds = p.integer("seconds", true, 1, kMaxAdvanceSeconds);
    p.finish();
    if (!virtual_clock_) throw RpcError::refused("clock.advance needs the virtual clock; this server runs on the real clock");
    target = std::to_string(*seconds) + "s";
    std::size_t fired = engine_.advance_clock_to(virtual_clock_->now() + *seconds * 1000, *virtual_clock_);
    return json::object{{"now", format_rfc3339(virtual_clock_->now())}, {"fired", fired}};
  }

  if (method == "plugin.list") {
    p.finish();
    json::array out;
    if (plugins_)
      for (const auto& info : plugins_->list()) {
        json::object o{{"name", info.name}, {"kind", info.kind}, {"version", info.version}, {"abi", info.abi}, {"status", info.status}};
        if (!info.error.empty()) o["error"] = info.error;
        out.push_back(std::move(o));
      }
    return out;
  }

  if (method == "billing.summary") {
    std::string case_id = case_id_param();
    p.finish();
    require_case(case_id);
    json::array charges;
    std::int64_t total = 0;
    std::map<std::string, std::pair<std::int64_t, std::int64_t>> by_code;  // code -> units, cents
    for (const auto& e : engine_.history(case_id)) {
      if (e.type != engine::event::charge_posted) continue;
      auto integer = [&](const char* key) -> std::int64_t {
        auto v = e.data.if_contains(key);
        return v && v->is_int64() ? v->get_int64() : v && v->is_uint64() ? static_cast<std::int64_t>(v->get_uint64()) : 0;
      };
      std::string code = e.data.contains("code") && e.data.at("code").is_string() ? std::string(e.data.at("code").get_string()) : "";
      std::int64_t cents = integer("amount_cents"), units = integer("units");
      json::object charge{{"seq", e.seq},  {"at", format_rfc3339(e.at)}, {"step", e.step}, {"code", code},
                          {"amount_cents", cents}, {"units", units}};
      if (auto d = e.data.if_contains("description")) charge["description"] = *d;
      charge["modifiers"] = e.data.contains("modifiers") ? e.data.at("modifiers") : json::array();
      charges.push_back(std::move(charge));
      total += cents;
      by_code[code].first += units;
      by_code[code].second += cents;
    }
    json::array totals;
    for (const auto& [code, sums] : by_code)
      totals.push_back(json::object{{"code", code}, {"units", sums.first}, {"amount_cents", sums.second}});
    return json::object{{"case_id", case_id}, {"charges", std::move(charges)}, {"by_code", std::move(totals)}, {"total_cents", total}};
  }

  if (method == "messages.list") {
    std::string case_id = case_id_param();
    auto include_body = p.boolean("include_body", false);
    p.finish();
    require_case(case_id);
    json::array out;
    for (const auto& m : store_.case_messages(case_id)) out.push_back(message_json(m, include_body.value_or(false)));
    return out;
  }

  if (method == "auth.token.create") {
    auto user = p.string("user", true, 64);
    auto roles = p.string_list("roles", true, 20);
    if (roles) {
      if (roles->empty()) p.problem("roles", "must name at least one role");
      for (const auto& r : *roles)
        if (!options_.role_methods.count(r)) p.problem("roles", "'" + r + "' is not a configured role");
    }
    p.finish();
    NewToken token;
    try {
      token = auth_.create_token(*user, *roles);
    } catch (const AuthError& e) {
      throw RpcError::invalid_params({{"user", e.what()}});
    }
    target = token.token_id;
    return json::object{{"token_id", token.token_id}, {"token", token.token}, {"user", *user}, {"roles", string_array(*roles)}};
  }
  if (method == "auth.token.revoke") {
    auto token_id = p.string("token_id", true, 100);
    if (token_id) target = *token_id;
    p.finish();
    if (!auth_.revoke_token(*token_id)) throw RpcError(code::not_found, "no active token '" + *token_id + "'");
    {
      // Live subscriptions under that token stop at once; its connections fail their next request.
      std::lock_guard lock(registry_->mutex);
      std::erase_if(registry_->subscriptions, [&](const auto& entry) { return entry.second.token_id == *token_id; });
    }
    return json::object{{"token_id", *token_id}, {"revoked", true}};
  }
  if (method == "auth.token.list") {
    p.finish();
    json::array out;
    for (const auto& t : auth_.list_tokens()) {
      json::object o{{"token_id", t.token_id}, {"user", t.user}, {"roles", string_array(t.roles)}, {"created_at", format_rfc3339(t.created_at)}};
      if (t.revoked_at) o["revoked_at"] = format_rfc3339(*t.revoked_at);
      out.push_back(std::move(o));
    }
    return out;
  }
  throw RpcError(code::method_not_found, "method not found: '" + method + "'");
}

}  // namespace clinicflow::api
