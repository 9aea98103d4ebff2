#pragma once
// The JSON-RPC API: method handlers, authentication, roles, audit and live event subscriptions,
// behind the transport-independent MessageHandler seam (api/connection.hpp). The contract (method
// names, parameters, results) is issue 4's and is documented in docs/api.md.
#include "api/auth_store.hpp"
#include "api/connection.hpp"
#include "api/rpc.hpp"
#include "api/view_cache.hpp"
#include "engine/clock.hpp"
#include "engine/engine.hpp"
#include "store/sqlite_case_store.hpp"
#include "workflow/workflow_set.hpp"

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace clinicflow::plugins {
class PluginHost;
}

namespace clinicflow::api {

// Role name -> the methods it may call. "*" allows every method; "case.*" every method starting
// with "case.". auth.login is open to everyone; auth.token.create, auth.token.revoke and
// clock.advance also need the role "admin" whatever the map says.
using RoleMethods = std::map<std::string, std::set<std::string>>;

struct ApiOptions {
  RoleMethods role_methods;
  RpcLimits limits;
};

class Api final : public MessageHandler {
 public:
  // `virtual_clock`: the same object as `clock` when the server runs on virtual time, else null.
  // `plugins` may be null (plugin.list answers []).
  Api(engine::Engine& engine, store::SqliteCaseStore& store, SqliteAuthStore& auth, const workflow::WorkflowSet& workflows,
      engine::Clock& clock, engine::VirtualClock* virtual_clock, const plugins::PluginHost* plugins, ApiOptions options);
  ~Api() override;
  Api(const Api&) = delete;
  Api& operator=(const Api&) = delete;

  void on_open(const std::shared_ptr<Connection>& connection, std::optional<std::string> bearer_token) override;
  void on_message(const std::shared_ptr<Connection>& connection, std::string_view text, Reply reply) override;
  bool authenticated(const Connection& connection) const override;
  // Runs one text frame to its answer and returns it (nothing for notifications only): for
  // in-process callers such as the scenario tests. Blocks until the answer is there (a write's
  // once it is durable).
  std::optional<std::string> handle(const std::shared_ptr<Connection>& connection, std::string_view text);
  void on_close(const Connection& connection) override;

  // Every method name, sorted.
  static const std::vector<std::string>& methods();
  // Live subscriptions (all connections); for tests and metrics.
  std::size_t subscription_count() const;

  struct Session;
  struct Registry;

 private:
  void call(const std::shared_ptr<Session>& session, const std::shared_ptr<Connection>& connection, const Request& request,
            Respond respond);
  Result run(Session& session, const std::shared_ptr<Connection>& connection, const std::string& method, Params& params,
             std::string& target);
  // The writes (patient.create, case.open, case.submit, case.close, case.retry): answered once durable.
  bool run_write(Session& session, const std::string& method, Params& params, const std::shared_ptr<std::string>& target,
                 Respond respond);
  std::string view(const engine::CaseState& state) const;  // serialized
  std::shared_ptr<Session> session_of(const Connection& connection) const;
  bool allowed(const Identity& identity, const std::string& method) const;
  void login(Session& session, std::optional<Identity> identity);
  void drop_subscriptions(Session& session);
  void audit(const Session& session, const std::string& method, const std::string& target, int code);
  engine::Actor actor(const Session& session) const;

  engine::Engine& engine_;
  store::SqliteCaseStore& store_;
  SqliteAuthStore& auth_;
  const workflow::WorkflowSet& workflows_;
  engine::Clock& clock_;
  engine::VirtualClock* virtual_clock_;
  const plugins::PluginHost* plugins_;
  ApiOptions options_;

  mutable std::mutex sessions_mutex_;
  std::map<std::uint64_t, std::shared_ptr<Session>> sessions_;
  std::shared_ptr<Registry> registry_;  // shared with the engine listener, which may outlive this
  ViewCache views_{4096};               // case.get's serialized views (a few KB each)
};

// The workflow definition as clients see it (workflow.get).
boost::json::object workflow_json(const workflow::Workflow& workflow);

}  // namespace clinicflow::api
