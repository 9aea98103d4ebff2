// The SHIPPED plugins (plugins/*/*, built into build/plugins) as clinicflowd wires them
// (kernel/src/server/main.cpp): settings read from a real configuration file, loaded through the
// real plugin host, their fields merged into workflows at load, and cases driven end to end by the
// engine on a real SQLite store with the virtual clock; messages delivered by the outbox dispatcher
// through the outbox_file plugin.
//
// Clinical values come from /work/shared/domain.md, cited by source key [Sx]. Where the brief gives
// no value (IV blood-pressure gates [S24], every IM and oral number, payer fees [S58]) the value
// is TEST-ONLY and says so: it is not a clinical recommendation.
#include "support/json_object.hpp"
#include "support/temp_dir.hpp"
#include "app/runtime.hpp"
#include "config/server_config.hpp"
#include "engine/case_view.hpp"
#include "engine/engine.hpp"
#include "engine/outbox_dispatcher.hpp"
#include "plugins/plugin_host.hpp"
#include "store/sqlite_case_store.hpp"
#include "workflow/workflow_set.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

using namespace clinicflow;
using namespace clinicflow::engine;
namespace json = boost::json;
namespace fs = std::filesystem;

namespace {

const std::string kPluginDir = CLINICFLOW_PLUGIN_DIR;
const TimePoint kStart = *parse_rfc3339("2026-03-02T09:00:00Z");  // a Monday
constexpr Duration kMinute = 60'000;
constexpr Duration kDay = 24 * 60 * kMinute;
const Actor kFrontdesk{"user:fd1", {"frontdesk"}};
const Actor kNurse{"user:rn1", {"nurse"}};
const Actor kBilling{"user:bl1", {"billing"}};

using clinicflow::testing::TempDir;

// ----------------------------------------------------------------------------------- configuration

// One [plugins.<name>] table: each setting as its TOML text.
struct Section {
  std::string plugin;
  std::string kind;
  std::vector<std::pair<std::string, std::string>> settings;
  std::vector<std::string> required;  // the settings the plugin's README lists as required (no default)
};

// The nine shipped plugins with plausible test settings.
std::vector<Section> shipped_sections(const fs::path& outbox_file) {
  return {
      {"iv_ketamine",
       "route",
       {// TEST-ONLY: IV BP hold/stop thresholds are UNVERIFIED in the sources [S24]; 140/90 is the README's example.
        {"max_systolic", "140"},
        {"max_diastolic", "90"},
        // TEST-ONLY: the sources give no pre-dose SpO2 limit [S12].
        {"min_spo2", "94"}},
       {"max_systolic", "max_diastolic", "min_spo2"}},
      {"esketamine_nasal", "route", {{"rems_setting_id", "\"TEST-REMS-SETTING-0001\""}}, {"rems_setting_id"}},
      // TEST-ONLY: the brief gives no dosing or monitoring numbers for IM ketamine.
      {"im_ketamine",
       "route",
       {{"dose_basis", "\"mg_per_kg\""},
        {"min_dose", "0.5"},
        {"max_dose", "1.0"},
        {"max_systolic", "150"},
        {"max_diastolic", "95"},
        {"min_spo2", "92"},
        {"min_aldrete", "9"},
        {"min_observation_minutes", "60"},
        {"no_driving_hours", "24"}},
       {"dose_basis", "min_dose", "max_dose", "max_systolic", "max_diastolic", "min_spo2", "min_aldrete",
        "min_observation_minutes", "no_driving_hours"}},
      // TEST-ONLY: the brief gives no dosing or monitoring numbers for oral ketamine. min_dose is a
      // TOML integer on purpose: the host turns it into the number the manifest asks for.
      {"oral_ketamine",
       "route",
       {{"dose_basis", "\"mg\""},
        {"min_dose", "50"},
        {"max_dose", "300"},
        {"max_systolic", "150"},
        {"max_diastolic", "95"},
        {"min_spo2", "92"},
        {"min_aldrete", "9"},
        {"min_observation_minutes", "90"},
        {"no_driving_hours", "24"}},
       {"dose_basis", "min_dose", "max_dose", "max_systolic", "max_diastolic", "min_spo2", "min_aldrete",
        "min_observation_minutes", "no_driving_hours"}},
      {"self_pay",
       "billing",
       {// TEST values within the published self-pay ranges: $400-800 per infusion [S73], a consult of about $350 [S74].
        {"session_fee_cents", "50000"},
        {"consultation_fee_cents", "35000"},
        {"payment_plan_max_installments", "3"},
        {"packages", "[{ name = \"induction_6\", sessions = 6, price_cents = 270000 }]"}},
       {"session_fee_cents", "consultation_fee_cents"}},
      {"insurance",
       "billing",
       {// TEST-ONLY amounts: the brief gives none, and payer amounts are contract-specific [S58][S36].
        {"fee_schedule", "{ \"96365\" = 18000, \"96366\" = 6000, \"96374\" = 9000, J3490 = 2500, G2082 = 40000, G2083 = 50000 }"},
        // The drug is not billed with the session here, so a 40-minute IV session is 96365 alone.
        {"bill_iv_drug", "false"}},
       {"fee_schedule"}},
      // No required setting: every setting has a default.
      {"outbox_file", "messaging", {{"path", "'" + outbox_file.string() + "'"}}, {}},
      {"webhook", "messaging", {{"url", "\"http://127.0.0.1:9/clinicflow/messages\""}}, {"url"}},
      {"smtp", "messaging", {{"url", "\"smtp://127.0.0.1:2525\""}, {"from", "\"Test Clinic <no-reply@clinic.test>\""}}, {"url", "from"}},
  };
}

struct ConfigText {
  std::string text;
  std::map<std::string, int> header_line;  // plugin -> line of its [plugins.<name>] header
};

// A complete server configuration; `skip_plugin`/`skip_setting` leave that one setting out.
ConfigText render_config(const fs::path& data_dir, const std::vector<Section>& sections, const std::string& skip_plugin = "",
                         const std::string& skip_setting = "") {
  std::ostringstream out;
  out << "# Written by shipped_plugins_test.\n"
      << "[server]\n"
      << "clock = \"virtual\"\n"
      << "plugin_timeout = \"60s\"\n"
      << "\n[paths]\n"
      << "data_dir = '" << data_dir.string() << "'\n"
      << "plugins_dir = '" << kPluginDir << "'\n"
      << "\n[delivery]\n"
      << "max_attempts = 3\n"
      << "first_retry = \"30s\"\n"
      << "max_retry = \"10m\"\n";
  ConfigText config;
  for (const auto& section : sections) {
    out << "\n";
    std::string so_far = out.str();
    config.header_line[section.plugin] = 1 + static_cast<int>(std::count(so_far.begin(), so_far.end(), '\n'));
    out << "[plugins." << section.plugin << "]\n";
    for (const auto& [key, value] : section.settings)
      if (!(section.plugin == skip_plugin && key == skip_setting)) out << key << " = " << value << "\n";
  }
  config.text = out.str();
  return config;
}

config::ServerConfig read_config(const fs::path& file, const std::string& text) {
  {
    std::ofstream(file) << text;
  }
  try {
    return config::load_config_file(file);
  } catch (const config::ConfigError& e) {
    for (const auto& error : e.errors()) UNSCOPED_INFO(error.to_string());
    FAIL("the test configuration does not load:\n" << text);
  }
  return {};
}

const plugins::PluginInfo* info_of(const std::vector<plugins::PluginInfo>& infos, std::string_view name) {
  for (const auto& info : infos)
    if (info.name == name) return &info;
  return nullptr;
}

void check_loaded(const plugins::PluginHost& host, const Section& section) {
  INFO("plugin " << section.plugin);
  auto infos = host.list();
  const plugins::PluginInfo* info = info_of(infos, section.plugin);
  REQUIRE(info);
  CHECK(info->status == "loaded");
  CHECK(info->error.empty());
  CHECK(info->kind == section.kind);
  CHECK(info->version == "1.0.0");
  CHECK(info->abi == "1.0");
  CHECK(info->file == (fs::path(kPluginDir) / (section.plugin + ".so")).string());
  CHECK_FALSE(info->description.empty());
  CHECK_FALSE(host.unavailable(section.plugin));
  CHECK(host.kind_of(section.plugin) == section.kind);
}

// ----------------------------------------------------------------------------------- the server

// The server's wiring, as in kernel/src/server/main.cpp, on a temporary data directory.
struct Server {
  TempDir dir;
  fs::path outbox_file = dir.path() / "outbox" / "messages.jsonl";
  std::vector<Section> sections = shipped_sections(outbox_file);
  ConfigText config_text = render_config(dir.path(), sections);
  config::ServerConfig config = read_config(dir.path() / "clinicflow.toml", config_text.text);
  std::unique_ptr<plugins::PluginHost> host;
  SourceErrors plugin_errors;
  workflow::LoadContext context;
  workflow::WorkflowSet workflows;
  std::unique_ptr<store::SqliteCaseStore> store;
  std::unique_ptr<VirtualClock> clock;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<OutboxDispatcher> dispatcher;
  std::size_t wakes = 0;

  Server() {
    host = std::make_unique<plugins::PluginHost>(plugins::HostOptions{config.plugins_dir, config.plugin_timeout});
    plugin_errors = host->load(config.plugins, config.file.string());
    for (const auto& e : plugin_errors) UNSCOPED_INFO(e.to_string());

    context = app::load_context(config, *host);  // as the server checks workflows

    store = std::make_unique<store::SqliteCaseStore>(store::SqliteOptions{config.database_path(), config.synchronous});
    store->write_setting(Engine::kVirtualClockSetting, std::to_string(kStart));
    clock = std::make_unique<VirtualClock>(std::stoll(*store->read_setting(Engine::kVirtualClockSetting)));
    engine = std::make_unique<Engine>(*store, workflows, *clock, host.get());
    dispatcher = std::make_unique<OutboxDispatcher>(
        *store, *clock,
        app::deliver_through(*host),  // as the server delivers
        RetryPolicy{config.delivery_max_attempts, config.delivery_first_retry, config.delivery_max_retry});
    // The server wakes its dispatcher thread on every queued message; here passes run synchronously
    // (dispatch_due), so the wake-ups are counted.
    engine->add_listener([this](const CaseState&, const std::vector<store::EventRecord>& events) {
      for (const auto& e : events)
        if (e.type == event::message_queued) {
          ++wakes;
          dispatcher->wake();
          return;
        }
    });
  }

  std::shared_ptr<const workflow::Workflow> add(const std::string& text, const std::string& file) {
    auto result = workflow::load_workflow_text(text, file, context);
    for (const auto& e : result.errors) UNSCOPED_INFO(e.to_string());
    REQUIRE(result.errors.empty());
    REQUIRE(result.workflow);
    REQUIRE_FALSE(workflows.add(result.workflow));
    return result.workflow;
  }

  std::vector<std::string> event_types(const std::string& case_id) const {
    std::vector<std::string> out;
    for (const auto& e : engine->history(case_id)) out.push_back(e.type + (e.step.empty() ? "" : ":" + e.step));
    return out;
  }

  std::vector<store::EventRecord> events_of_type(const std::string& case_id, const std::string& type) const {
    std::vector<store::EventRecord> out;
    for (auto& e : engine->history(case_id))
      if (e.type == type) out.push_back(e);
    return out;
  }

  // Replaying the event log gives exactly the stored projection.
  void check_projection(const std::string& case_id) const {
    auto stored = store->read_case(case_id);
    REQUIRE(stored);
    CaseState replayed = replay(case_id, store->read_events(case_id));
    CHECK(json::serialize(clinicflow::testing::json_object(to_json_text(replayed))) == json::serialize(stored->state));
    CHECK(stored->revision == replayed.revision);
    CHECK(stored->status == replayed.status);
  }
};

// Submits and expects the plugin's refusal with exactly `reason`.
void expect_refused(const std::function<void()>& submit, const std::string& reason) {
  try {
    submit();
  } catch (const EngineError& e) {
    CHECK(e.kind() == ErrorKind::refused);
    CHECK(std::string(e.what()) == reason);
    return;
  }
  FAIL("the submission was accepted; expected the refusal: " << reason);
}

// The last event is a step_refused on `step` by `plugin` with `reason`, and the step is still open.
void check_refusal_recorded(const Server& s, const std::string& case_id, const std::string& step, const std::string& plugin,
                            const std::string& reason, const Actor& by) {
  auto history = s.engine->history(case_id);
  REQUIRE_FALSE(history.empty());
  const auto& last = history.back();
  CHECK(last.type == "step_refused");
  CHECK(last.step == step);
  CHECK(last.actor == "plugin:" + plugin);
  CHECK(json::serialize(last.data) == json::serialize(json::object{{"reason", reason}, {"by", by.id}}));
  auto state = s.engine->get_case(case_id);
  REQUIRE(state);
  const ActiveStep* active = state->find_active(step);
  REQUIRE(active);
  CHECK_FALSE(active->waiting);
  CHECK(state->status == "active");
}

std::vector<std::string> lines_of(const fs::path& file) {
  std::vector<std::string> out;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::vector<std::string> names_of(const std::vector<workflow::FieldDef>& fields) {
  std::vector<std::string> out;
  for (const auto& f : fields) out.push_back(f.name);
  return out;
}

double number(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (!v || !v->is_number()) {
    FAIL("no number '" << key << "' in " << json::serialize(o));
    return 0;
  }
  return v->to_number<double>();
}

std::string text(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (!v || !v->is_string()) {
    FAIL("no text '" << key << "' in " << json::serialize(o));
    return {};
  }
  return std::string(v->get_string());
}

// ----------------------------------------------------------------------------------- workflows

const char* const kIvSelfPayFlow = R"toml(
id = "iv_self_pay"
version = 1
title = "IV ketamine induction, self-pay"

[template.discharge_note]
subject = "After infusion {{case.repetition}}"
body = "Infusion {{case.repetition}} for {{case.patient_id}}: {{infusion.dose_mg_per_kg}} mg/kg at {{arrival.weight_kg}} kg, modified Aldrete {{discharge.aldrete}}. A driver takes you home; do not drive for 24 hours."

[[stage]]
id = "payment"

[[stage]]
id = "induction"
repeat = { times = 2, min_interval = "2d", max_interval = "5d" }

[[step]]
id = "payment_choice"
stage = "payment"
roles = ["billing"]
plugin = "self_pay"

  [step.settings]
  action = "choose_payment"

[[step]]
id = "arrival"
stage = "induction"
title = "Arrival and pre-dose vitals"
roles = ["nurse"]
plugin = "iv_ketamine"

  [[step.field]]
  name = "contact_email"
  type = "string"
  required = true

  [step.settings]
  phase = "pre_dose"

[[step]]
id = "infusion"
stage = "induction"
roles = ["nurse", "prescriber"]
plugin = "iv_ketamine"

  [step.settings]
  phase = "dosing"
  weight_from = "arrival.weight_kg"

[[step]]
id = "discharge"
stage = "induction"
roles = ["nurse"]
plugin = "iv_ketamine"

  [step.settings]
  phase = "discharge"

  [[step.message]]
  template = "discharge_note"
  via = "outbox_file"
  to = "patient"
  address = "{{arrival.contact_email}}"

[[step]]
id = "session_charge"
stage = "induction"
kind = "automatic"
plugin = "self_pay"

  [step.settings]
  action = "session"
  pricing_from = "payment_choice.pricing"
)toml";

const char* const kSpravatoFlow = R"toml(
id = "spravato"
version = 1
title = "Esketamine nasal spray session"

[[stage]]
id = "treatment"

[[step]]
id = "pre_dose"
stage = "treatment"
roles = ["nurse"]
plugin = "esketamine_nasal"

  [step.settings]
  phase = "pre_dose"

[[step]]
id = "dose"
stage = "treatment"
roles = ["nurse", "prescriber"]
plugin = "esketamine_nasal"

  [step.settings]
  phase = "dosing"
  indication = "trd"

[[step]]
id = "discharge"
stage = "treatment"
roles = ["nurse", "prescriber"]
plugin = "esketamine_nasal"

  [step.settings]
  phase = "discharge"
  dosing_step = "dose"
)toml";

const char* const kIvInsuranceFlow = R"toml(
id = "iv_insurance"
version = 1
title = "IV ketamine billed to insurance"

[[stage]]
id = "payment"

[[stage]]
id = "sessions"
repeat = { times = 3 }

[[step]]
id = "coverage"
stage = "payment"
roles = ["billing"]
plugin = "insurance"

  [step.settings]
  action = "coverage"

[[step]]
id = "pa_decision"
stage = "payment"
roles = ["billing"]
plugin = "insurance"

  [step.settings]
  action = "prior_authorization"

[[step]]
id = "session_check"
stage = "sessions"
kind = "automatic"
plugin = "insurance"

  [step.settings]
  action = "authorization_check"
  authorization_from = "pa_decision"

[[step]]
id = "infusion"
stage = "sessions"
roles = ["nurse"]
plugin = "iv_ketamine"

  [step.settings]
  phase = "dosing"

[[step]]
id = "session_charge"
stage = "sessions"
kind = "automatic"
plugin = "insurance"

  [step.settings]
  action = "charge_session"
  route = "iv_ketamine"
  coverage_from = "coverage"
  minutes_from = "infusion.infusion_minutes"
  authorization_from = "pa_decision"
)toml";

}  // namespace

// ----------------------------------------------------------------------------------- 1. loading

TEST_CASE("all nine shipped plugins load from a configuration file with their kind, version and ABI") {
  Server s;
  CHECK(s.plugin_errors.empty());
  auto infos = s.host->list();
  REQUIRE(infos.size() == 9);
  for (std::size_t i = 0; i < s.sections.size(); ++i) {
    CHECK(infos[i].name == s.sections[i].plugin);  // in the order of the configuration
    check_loaded(*s.host, s.sections[i]);
  }
}

TEST_CASE("each required setting left out fails only its plugin, at its table, naming the setting") {
  TempDir dir;
  const auto sections = shipped_sections(dir.path() / "outbox.jsonl");
  std::size_t cases = 0;
  for (const auto& broken : sections) {
    for (const auto& setting : broken.required) {
      ++cases;
      INFO("leaving out " << broken.plugin << "." << setting);
      ConfigText text = render_config(dir.path(), sections, broken.plugin, setting);
      const fs::path file = dir.path() / ("missing-" + broken.plugin + "-" + setting + ".toml");
      config::ServerConfig config = read_config(file, text.text);
      plugins::PluginHost host({config.plugins_dir, config.plugin_timeout});
      SourceErrors errors = host.load(config.plugins, config.file.string());
      for (const auto& e : errors) UNSCOPED_INFO(e.to_string());
      REQUIRE(errors.size() == 1);
      const SourceError& error = errors[0];
      CHECK(error.file == file.string());
      CHECK(error.line == text.header_line.at(broken.plugin));
      CHECK(error.column == 1);
      const std::string prefix = "plugin '" + broken.plugin + "': setting '" + setting + "' is required (";
      CHECK_THAT(error.message, Catch::StartsWith(prefix) && Catch::EndsWith(")"));
      CHECK(error.message.size() > prefix.size() + 1);  // the manifest's description of the setting
      CHECK(error.message.find("' is required (", prefix.size()) == std::string::npos);  // the only problem reported

      auto infos = host.list();
      REQUIRE(infos.size() == 9);
      const plugins::PluginInfo* info = info_of(infos, broken.plugin);
      REQUIRE(info);
      CHECK(info->status == "failed");
      CHECK("plugin '" + broken.plugin + "': " + info->error == error.message);
      CHECK(info->kind == broken.kind);  // the manifest was read before the settings were checked
      CHECK(info->version == "1.0.0");
      CHECK(info->abi == "1.0");
      CHECK(host.unavailable(broken.plugin) == "it failed to load: " + info->error);
      CHECK_FALSE(host.kind_of(broken.plugin));
      for (const auto& other : sections)
        if (other.plugin != broken.plugin) check_loaded(host, other);
    }
  }
  CHECK(cases == 28);  // 3 + 1 + 9 + 9 + 2 + 1 + 0 + 1 + 2
}

// ----------------------------------------------------------------------------------- 2. IV, self-pay, outbox

TEST_CASE("IV ketamine with self-pay in a repeated stage: gates, exact dose, Aldrete, charges, and a delivered message") {
  Server s;
  REQUIRE(s.plugin_errors.empty());
  auto wf = s.add(kIvSelfPayFlow, "iv_self_pay.toml");

  // The plugins' fields are in the steps' forms, before the workflow's own.
  CHECK(names_of(wf->find_step("payment_choice")->fields) ==
        std::vector<std::string>{"pricing", "installments", "hsa_fsa", "letter_of_medical_necessity"});
  CHECK(wf->find_step("arrival")->plugin_fields ==
        std::vector<std::string>{"weight_kg", "systolic", "diastolic", "heart_rate", "spo2"});
  CHECK(names_of(wf->find_step("arrival")->fields) ==
        std::vector<std::string>{"weight_kg", "systolic", "diastolic", "heart_rate", "spo2", "contact_email"});
  CHECK(names_of(wf->find_step("infusion")->fields) ==  // weight_from: the weight is not asked again
        std::vector<std::string>{"dose_mg_per_kg", "infusion_minutes", "bp_readings", "peak_systolic", "peak_diastolic"});
  CHECK(names_of(wf->find_step("discharge")->fields) ==
        std::vector<std::string>{"aldrete", "recovery_minutes", "driver_present", "discharged_at"});
  CHECK(wf->find_step("session_charge")->fields.empty());

  CaseState state = s.engine->open_case("patient-7", "iv_self_pay", std::nullopt, kFrontdesk);
  const std::string id = state.case_id;
  {
    json::object view = clinicflow::testing::json_object(case_view_json(state, *wf));
    const json::object& schema = view.at("open_tasks").as_array().at(0).at("schema").as_object();
    CHECK(json::serialize(schema.at("properties").at("pricing").at("enum")) == R"(["per_session","induction_6"])");
    CHECK(json::serialize(schema.at("required")) == R"(["pricing"])");
  }
  state = s.engine->submit(id, "payment_choice", {{"pricing", "per_session"}}, kBilling);
  CHECK(json::serialize(state.data.at("payment_choice")) == R"({"pricing":"per_session","installments":1,"session_fee_cents":50000})");
  REQUIRE(state.find_active("arrival"));
  CHECK(state.repetition == 1);
  {
    json::object view = clinicflow::testing::json_object(case_view_json(state, *wf));
    const json::object& schema = view.at("open_tasks").as_array().at(0).at("schema").as_object();
    CHECK(json::serialize(schema.at("required")) == R"(["weight_kg","systolic","diastolic","heart_rate","spo2","contact_email"])");
    CHECK(schema.at("properties").at("spo2").at("maximum").to_number<double>() == 100);
    CHECK(schema.at("properties").at("systolic").at("description") ==
          "The session is deferred above 140 mmHg (clinic setting). (unit: mmHg)");
  }

  // Pre-dose: above the configured gate, refused and recorded; the step stays open.
  json::object vitals{{"weight_kg", 70}, {"systolic", 152}, {"diastolic", 96}, {"heart_rate", 78}, {"spo2", 98},
                      {"contact_email", "patient7@example.org"}};
  const std::string bp_reason = "pre-dose blood pressure 152/96 mmHg is above the limit 140/90 mmHg: defer the session";
  const std::int64_t before_refusal = state.revision;
  expect_refused([&] { s.engine->submit(id, "arrival", vitals, kNurse); }, bp_reason);
  check_refusal_recorded(s, id, "arrival", "iv_ketamine", bp_reason, kNurse);
  CHECK(s.engine->get_case(id)->revision == before_refusal + 1);
  CHECK_FALSE(s.engine->get_case(id)->data.contains("arrival"));

  // Exactly at the gate passes (a value equal to the limit passes).
  vitals["systolic"] = 140;
  vitals["diastolic"] = 90;
  state = s.engine->submit(id, "arrival", vitals, kNurse);
  const json::object& arrival = state.data.at("arrival").as_object();
  CHECK(text(arrival, "bp_limit_mmhg") == "140/90");
  CHECK(arrival.at("spo2_limit_percent") == 94);
  CHECK(arrival.at("systolic") == 140);
  REQUIRE(state.find_active("infusion"));

  // Dosing: the dose is derived from the weight recorded at arrival, 0.5 mg/kg by default [S19].
  s.clock->set(kStart + 50 * kMinute);
  state = s.engine->submit(id, "infusion", {{"bp_readings", 4}}, kNurse);
  {
    const json::object& d = state.data.at("infusion").as_object();
    CHECK(d.at("dose_mg").is_int64());
    CHECK(d.at("dose_mg") == 35);  // 0.5 mg/kg x 70 kg
    CHECK(number(d, "dose_mg_per_kg") == 0.5);
    CHECK(number(d, "weight_kg") == 70);
    CHECK(number(d, "infusion_minutes") == 40);  // [S19]
    CHECK(d.at("expected_bp_readings") == 4);    // one every 10 min [S22][S23]
    CHECK(number(d, "earliest_discharge_minutes") == 100);
    CHECK(d.at("bp_readings") == 4);
    CHECK(d.size() == 7);
  }

  // Discharge: modified Aldrete 8 is refused, 9 allows discharge [S25].
  s.clock->set(kStart + 110 * kMinute);  // 2026-03-02T10:50:00Z
  json::object discharge{{"aldrete", 8}, {"recovery_minutes", 60}, {"driver_present", true}};
  const std::string aldrete_reason =
      "modified Aldrete score 8 is below 9, the minimum for discharge: keep the patient in recovery";
  expect_refused([&] { s.engine->submit(id, "discharge", discharge, kNurse); }, aldrete_reason);
  check_refusal_recorded(s, id, "discharge", "iv_ketamine", aldrete_reason, kNurse);
  CHECK(s.wakes == 0);
  CHECK(s.store->case_messages(id).empty());  // a refused discharge queues nothing

  discharge["aldrete"] = 9;
  state = s.engine->submit(id, "discharge", discharge, kNurse);
  {
    const json::object& d = state.data.at("discharge").as_object();
    CHECK(text(d, "discharged_at") == "2026-03-02T10:50:00Z");
    CHECK(text(d, "no_driving_until") == "2026-03-03T10:50:00Z");  // 24 h [S13][S17]
  }

  // The session charge ran at once, with the exact configured cents.
  {
    const json::object& c = state.data.at("session_charge").as_object();
    CHECK(json::serialize(c) ==
          R"({"service":"session","service_date":"2026-03-02","session_number":1,"pricing":"per_session","amount_cents":50000,)"
          R"("charged_to_date_cents":50000,"charged":[{"service":"session","date":"2026-03-02","session":1,"units":1,"amount_cents":50000}]})");
    auto charges = s.events_of_type(id, event::charge_posted);
    REQUIRE(charges.size() == 1);
    CHECK(charges[0].step == "session_charge");
    CHECK(charges[0].actor == "plugin:self_pay");
    CHECK(json::serialize(charges[0].data) ==
          R"j({"code":"SELFPAY-SESSION","description":"Session (self-pay)","amount_cents":50000,"units":1,"modifiers":[]})j");
  }

  // Repetition 2 waits two days after repetition 1's arrival [min_interval].
  CHECK(state.repetition == 2);
  const ActiveStep* waiting = state.find_active("arrival");
  REQUIRE(waiting);
  CHECK(waiting->waiting);
  CHECK(waiting->opens_at == kStart + 2 * kDay);
  CHECK(waiting->due == kStart + 5 * kDay);

  // The message: queued in the discharge's write, rendered, delivered by the dispatcher through outbox_file.
  CHECK(s.wakes == 1);
  auto queued = s.events_of_type(id, event::message_queued);
  REQUIRE(queued.size() == 1);
  const std::string message_id = id + "-" + std::to_string(queued[0].seq);
  CHECK(queued[0].step == "discharge");
  CHECK(json::serialize(queued[0].data) ==
        json::serialize(json::object{{"message_id", message_id},
                                     {"template", "discharge_note"},
                                     {"via", "outbox_file"},
                                     {"to", "patient"},
                                     {"not_before", kStart + 110 * kMinute}}));
  const std::string body1 =
      "Infusion 1 for patient-7: 0.5 mg/kg at 70 kg, modified Aldrete 9. A driver takes you home; do not drive for 24 hours.";
  {
    auto rows = s.store->case_messages(id);
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].id == message_id);
    CHECK(rows[0].plugin == "outbox_file");
    CHECK(rows[0].status == "pending");
    CHECK(rows[0].address == "patient7@example.org");
    CHECK(rows[0].subject == "After infusion 1");
    CHECK(rows[0].body == body1);
  }
  CHECK(lines_of(s.outbox_file).empty());  // the plugin created the file at start; nothing is written before a dispatch
  CHECK(s.dispatcher->dispatch_due() == 1);
  CHECK(s.dispatcher->dispatch_due() == 0);
  {
    auto rows = s.store->case_messages(id);
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].status == "delivered");
    CHECK(rows[0].attempts == 1);
    CHECK(rows[0].last_error.empty());
    CHECK(rows[0].delivered_at == kStart + 110 * kMinute);
  }
  auto check_line = [&](const std::string& line, const std::string& mid, int repetition, const std::string& body) {
    INFO("line: " << line);
    boost::system::error_code ec;
    json::value parsed = json::parse(line, ec);
    REQUIRE_FALSE(ec);
    REQUIRE(parsed.is_object());
    const json::object& o = parsed.get_object();
    CHECK(o.size() == 9);
    CHECK(text(o, "id") == mid);
    CHECK(text(o, "case_id") == id);
    CHECK(text(o, "template") == "discharge_note");
    CHECK(text(o, "recipient") == "patient");
    CHECK(text(o, "address") == "patient7@example.org");
    CHECK(text(o, "subject") == "After infusion " + std::to_string(repetition));
    CHECK(text(o, "body") == body);
    CHECK(o.at("attempt") == 1);
    CHECK(parse_rfc3339(text(o, "delivered_at")));  // the plugin's wall clock: only its form is checked
  };
  {
    auto lines = lines_of(s.outbox_file);
    REQUIRE(lines.size() == 1);
    check_line(lines[0], message_id, 1, body1);
  }
  s.check_projection(id);

  // Repetition 2 opens on its timer; a heavier patient, the standard dose again.
  CHECK(s.engine->advance_clock_to(kStart + 2 * kDay, *s.clock) == 1);
  state = *s.engine->get_case(id);
  REQUIRE(state.find_active("arrival"));
  CHECK_FALSE(state.find_active("arrival")->waiting);
  state = s.engine->submit(id, "arrival",
                           {{"weight_kg", 82.4}, {"systolic", 128}, {"diastolic", 82}, {"heart_rate", 72}, {"spo2", 97},
                            {"contact_email", "patient7@example.org"}},
                           kNurse);
  s.clock->set(kStart + 2 * kDay + 50 * kMinute);
  state = s.engine->submit(id, "infusion", {{"bp_readings", 5}, {"peak_systolic", 146}, {"peak_diastolic", 92}}, kNurse);
  CHECK(number(state.data.at("infusion").as_object(), "dose_mg") == 41.2);  // 0.5 mg/kg x 82.4 kg
  CHECK(number(state.data.at("infusion").as_object(), "weight_kg") == 82.4);
  s.clock->set(kStart + 2 * kDay + 110 * kMinute);
  state = s.engine->submit(id, "discharge", {{"aldrete", 10}, {"recovery_minutes", 60}, {"driver_present", true}}, kNurse);

  // The series is over: the case completed, two sessions charged.
  CHECK(state.status == "completed");
  CHECK(state.active.empty());
  CHECK(json::serialize(state.data.at("session_charge").at("charged")) ==
        R"([{"service":"session","date":"2026-03-02","session":1,"units":1,"amount_cents":50000},)"
        R"({"service":"session","date":"2026-03-04","session":2,"units":1,"amount_cents":50000}])");
  CHECK(state.data.at("session_charge").at("charged_to_date_cents") == 100000);
  CHECK(state.data.at("session_charge").at("session_number") == 2);
  auto charges = s.events_of_type(id, event::charge_posted);
  REQUIRE(charges.size() == 2);
  for (const auto& c : charges) CHECK(c.data.at("amount_cents") == 50000);

  CHECK(s.dispatcher->dispatch_due() == 1);
  {
    auto lines = lines_of(s.outbox_file);
    REQUIRE(lines.size() == 2);
    auto second = s.events_of_type(id, event::message_queued);
    REQUIRE(second.size() == 2);
    check_line(lines[1], id + "-" + std::to_string(second[1].seq), 2,
               "Infusion 2 for patient-7: 0.5 mg/kg at 82.4 kg, modified Aldrete 10. A driver takes you home; do not drive for 24 hours.");
  }

  CHECK(s.event_types(id) ==
        std::vector<std::string>{"case_opened",
                                 "stage_entered",
                                 "step_opened:payment_choice",
                                 "step_completed:payment_choice",
                                 "stage_entered",
                                 "step_opened:arrival",
                                 "step_refused:arrival",
                                 "step_completed:arrival",
                                 "step_opened:infusion",
                                 "step_completed:infusion",
                                 "step_opened:discharge",
                                 "step_refused:discharge",
                                 "step_completed:discharge",
                                 "message_queued:discharge",
                                 "step_opened:session_charge",
                                 "step_completed:session_charge",
                                 "charge_posted:session_charge",
                                 "stage_entered",
                                 "step_waiting:arrival",
                                 "step_opened:arrival",
                                 "step_completed:arrival",
                                 "step_opened:infusion",
                                 "step_completed:infusion",
                                 "step_opened:discharge",
                                 "step_completed:discharge",
                                 "message_queued:discharge",
                                 "step_opened:session_charge",
                                 "step_completed:session_charge",
                                 "charge_posted:session_charge",
                                 "case_ended:session_charge"});
  s.check_projection(id);
}

// ----------------------------------------------------------------------------------- 3. esketamine

TEST_CASE("esketamine nasal: REMS enrollment, 56 mg before 84 mg for TRD, and 2 h of monitoring") {
  Server s;
  REQUIRE(s.plugin_errors.empty());
  auto wf = s.add(kSpravatoFlow, "spravato.toml");
  CHECK(wf->find_step("pre_dose")->plugin_fields ==
        std::vector<std::string>{"rems_enrolled", "prescriber_onsite", "pulse_oximeter_onsite", "systolic", "diastolic",
                                 "elevated_bp_risk_accepted", "minutes_since_food", "minutes_since_liquids",
                                 "minutes_since_nasal_medication"});

  CaseState state = s.engine->open_case("patient-9", "spravato", std::nullopt, kFrontdesk);
  const std::string id = state.case_id;

  // Not enrolled in the REMS: refused [S30][S10]. Fasting exactly at its limits passes [S6][S11].
  json::object pre{{"rems_enrolled", false}, {"prescriber_onsite", true}, {"pulse_oximeter_onsite", true},
                   {"systolic", 128},        {"diastolic", 82},         {"minutes_since_food", 120},
                   {"minutes_since_liquids", 30}};
  const std::string rems_reason =
      "the patient is not enrolled in the SPRAVATO REMS: enroll the patient (Patient Enrollment Form signed by patient and "
      "prescriber) before the first dose";
  expect_refused([&] { s.engine->submit(id, "pre_dose", pre, kNurse); }, rems_reason);
  check_refusal_recorded(s, id, "pre_dose", "esketamine_nasal", rems_reason, kNurse);
  pre["rems_enrolled"] = true;
  state = s.engine->submit(id, "pre_dose", pre, kNurse);
  CHECK(text(state.data.at("pre_dose").as_object(), "rems_setting_id") == "TEST-REMS-SETTING-0001");
  CHECK(state.data.at("pre_dose").at("bp_elevated") == false);

  // TRD: 84 mg only after a 56 mg starting dose [S38]; the first session is refused at 84 mg.
  json::object dose{{"dose_mg", 84},
                    {"devices_used", 3},
                    {"first_device_at", "2026-03-02T09:30:00Z"},
                    {"last_device_at", "2026-03-02T09:40:00Z"},
                    {"lot_number", "TESTLOT01"}};
  const std::string dose_reason =
      "84 mg is given only after a 56 mg starting dose, and no earlier dose is recorded: the first dose is 56 mg";
  expect_refused([&] { s.engine->submit(id, "dose", dose, kNurse); }, dose_reason);
  check_refusal_recorded(s, id, "dose", "esketamine_nasal", dose_reason, kNurse);
  dose["dose_mg"] = 56;  // 2 devices of 28 mg, 5 min apart [S6][S8][S38]
  dose["devices_used"] = 2;
  dose["last_device_at"] = "2026-03-02T09:35:00Z";
  state = s.engine->submit(id, "dose", dose, kNurse);
  {
    const json::object& d = state.data.at("dose").as_object();
    CHECK(d.at("session_number") == 1);
    CHECK(d.at("devices") == 2);
    CHECK(text(d, "session_date") == "2026-03-02");
    CHECK(text(d, "treatment_phase") == "induction");
    CHECK(text(d, "dosing_frequency") == "twice weekly");
    CHECK(text(d, "bp_recheck_due_at") == "2026-03-02T10:10:00Z");      // 40 min [S7][S38]
    CHECK(text(d, "earliest_discharge_at") == "2026-03-02T11:30:00Z");  // 2 h [S10][S30]
  }

  // Discharge before 120 min of monitoring: refused [S10][S30]; at 120 min it goes ahead.
  s.clock->set(*parse_rfc3339("2026-03-02T11:29:00Z"));
  json::object discharge{{"monitoring_minutes", 119},
                         {"sedation_resolved", true},
                         {"dissociation_resolved", true},
                         {"respiratory_depression_resolved", true},
                         {"systolic", 132},
                         {"diastolic", 84},
                         {"ride_home", true}};
  const std::string monitoring_reason = "monitoring 119 min is shorter than the minimum 120 min: keep monitoring for 1 more min";
  expect_refused([&] { s.engine->submit(id, "discharge", discharge, kNurse); }, monitoring_reason);
  check_refusal_recorded(s, id, "discharge", "esketamine_nasal", monitoring_reason, kNurse);
  s.clock->set(*parse_rfc3339("2026-03-02T11:30:00Z"));
  discharge["monitoring_minutes"] = 120;
  state = s.engine->submit(id, "discharge", discharge, kNurse);
  CHECK(state.status == "completed");
  {
    const json::object& d = state.data.at("discharge").as_object();
    CHECK(text(d, "no_driving_until") == "2026-03-03");  // the next day, after a restful sleep [S7][S8]
    CHECK(d.at("pmf_required") == true);
    CHECK(text(d, "pmf_due") == "2026-03-09");  // within 7 days [S16][S32]
    CHECK(text(d, "discharged_at") == "2026-03-02T11:30:00Z");
  }
  CHECK(s.events_of_type(id, event::step_refused).size() == 3);
  s.check_projection(id);
}

// ----------------------------------------------------------------------------------- 4. insurance

TEST_CASE("insurance: 2 authorized units cover two sessions, the third is flagged before it happens, 40 min bills 96365") {
  Server s;
  REQUIRE(s.plugin_errors.empty());
  auto wf = s.add(kIvInsuranceFlow, "iv_insurance.toml");
  CHECK(wf->find_step("pa_decision")->plugin_fields ==
        std::vector<std::string>{"status", "authorization_number", "authorized_units", "start_date", "expiry_date",
                                 "denial_reason", "notes"});
  CHECK(wf->find_step("infusion")->plugin_fields ==  // no weight_from: the dosing form asks for the weight
        std::vector<std::string>{"weight_kg", "dose_mg_per_kg", "infusion_minutes", "bp_readings", "peak_systolic",
                                 "peak_diastolic"});

  CaseState state = s.engine->open_case("patient-11", "iv_insurance", std::nullopt, kFrontdesk);
  const std::string id = state.case_id;
  state = s.engine->submit(id, "coverage",
                           {{"payer", "Example Health"}, {"member_id", "EH-000123"}, {"payer_type", "commercial"}, {"covered", "yes"}},
                           kBilling);
  state = s.engine->submit(id, "pa_decision",
                           {{"status", "approved"},
                            {"authorization_number", "PA-TEST-0001"},
                            {"authorized_units", 2},
                            {"start_date", "2026-03-01"},
                            {"expiry_date", "2026-06-30"}},
                           kBilling);
  CHECK(state.data.at("pa_decision").at("valid_days") == 122);  // 1 March to 30 June, both included

  auto check_session = [&](int session, bool last) {
    INFO("session " << session);
    const json::object& check = state.data.at("session_check").as_object();
    CHECK(json::serialize(check) == json::serialize(json::object{{"authorization_number", "PA-TEST-0001"},
                                                                 {"session_number", session},
                                                                 {"units_used", session},
                                                                 {"units_remaining", 2 - session},
                                                                 {"expiry_date", "2026-06-30"},
                                                                 {"days_to_expiry", 120},
                                                                 {"last_authorized_session", last}}));
    REQUIRE(state.find_active("infusion"));
    state = s.engine->submit(id, "infusion", {{"weight_kg", 70}, {"bp_readings", 4}}, kNurse);
    CHECK(number(state.data.at("infusion").as_object(), "infusion_minutes") == 40);
    const json::object& charge = state.data.at("session_charge").as_object();
    CHECK(json::serialize(charge.at("codes")) == R"(["96365"])");
    CHECK(charge.at("total_cents") == 18000);
    CHECK(number(charge, "infusion_minutes") == 40);
    CHECK(text(charge, "authorization_number") == "PA-TEST-0001");
    CHECK(text(charge, "payer_type") == "commercial");
    CHECK(text(charge, "service_date") == "2026-03-02");
  };

  // Sessions 1 and 2: the check passes, each session is charged 96365 alone at the fee_schedule amount.
  REQUIRE(state.find_active("infusion"));
  CHECK(state.repetition == 1);
  check_session(1, false);
  CHECK(state.repetition == 2);
  check_session(2, true);

  // Session 3: the automatic check refuses before the session is recorded; the step stays open.
  const std::string units_reason =
      "session 3 would bring the units used to 3, but authorization PA-TEST-0001 covers 2: a re-authorization is needed "
      "before this session";
  CHECK(state.repetition == 3);
  CHECK(state.status == "active");
  const ActiveStep* check = state.find_active("session_check");
  REQUIRE(check);
  CHECK(check->last_error == units_reason);
  CHECK_FALSE(state.find_active("infusion"));
  auto history = s.engine->history(id);
  REQUIRE(history.size() >= 3);
  CHECK(history.back().type == "step_failed");
  CHECK(history.back().step == "session_check");
  CHECK(history.back().actor == "plugin:insurance");
  CHECK(json::serialize(history.back().data) == json::serialize(json::object{{"error", units_reason}, {"refused", true}}));
  CHECK(history[history.size() - 3].type == "stage_entered");
  CHECK(json::serialize(history[history.size() - 3].data) == R"({"stage":"sessions","repetition":3})");

  // A retry is refused again: nothing changes until the authorization does.
  state = s.engine->retry_step(id, "session_check", Actor::system());
  REQUIRE(state.find_active("session_check"));
  CHECK(state.find_active("session_check")->last_error == units_reason);
  CHECK_FALSE(state.find_active("infusion"));

  auto charges = s.events_of_type(id, event::charge_posted);
  REQUIRE(charges.size() == 2);
  for (const auto& c : charges) {
    CHECK(c.step == "session_charge");
    CHECK(c.actor == "plugin:insurance");
    CHECK(json::serialize(c.data) ==
          R"({"code":"96365","description":"IV infusion, initial, up to 1 hour","amount_cents":18000,"units":1,"modifiers":[]})");
  }
  CHECK(s.events_of_type(id, event::step_failed).size() == 2);
  s.check_projection(id);
}
