// clinicflow_bench: a one-thread load generator for clinicflowd and clinicflow_echo.
//
// One io_context on one thread drives C WebSocket connections; each connection has exactly one
// request in flight. Connection setup (and, for --phase get and submit, creating the cases to read
// or submit to) happens before the clock starts; only answers that arrive within the measured
// window are counted.
//
//   clinicflow_bench --echo HOST:PORT -c C -d SECONDS
//   clinicflow_bench --api ws://HOST:PORT/v1/ws --token T -c C -d SECONDS --workflow ID
//                    [--phase walk|get|submit|both] [--roles r1,r2,...] [--setup-cases N]
//
// --api walks synthetic patients through the workflow: patient.create, case.open, then
// case.submit for each open task with values valid for its JSON Schema, until the case ends
// or no open task can be submitted (e.g. the next step waits on the virtual clock). --phase get
// first walks N cases per connection, then only reads them with case.get. --phase submit first
// creates N patients and opens their cases per connection, then walks those cases: case.submit
// only, until they run out (then it goes on as walk).
// The last line of output is a machine-readable "RESULT key=value ..." line.
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>  // basic_parser<AnswerScan> is instantiated here

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
namespace json = boost::json;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kUsage =
    R"(usage: clinicflow_bench --echo HOST:PORT -c C -d SECONDS
       clinicflow_bench --api ws://HOST:PORT/v1/ws --token T -c C -d SECONDS --workflow ID
                        [--phase walk|get|submit|both] [--roles frontdesk,nurse,prescriber,billing]
                        [--setup-cases N]
)";

struct Options {
  std::string echo;       // HOST:PORT
  std::string api;        // ws://HOST:PORT/path
  std::string token;
  std::string workflow;
  std::string phase = "walk";
  std::string roles = "frontdesk,nurse,prescriber,billing";
  int connections = 1;
  double seconds = 5;
  int setup_cases = 2;
};

struct Endpoint {
  std::string host, port, target;
};

Endpoint parse_endpoint(const std::string& text) {
  std::string rest = text;
  if (rest.rfind("ws://", 0) == 0) rest = rest.substr(5);
  Endpoint e;
  auto slash = rest.find('/');
  e.target = slash == std::string::npos ? "/" : rest.substr(slash);
  rest = rest.substr(0, slash);
  auto colon = rest.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error("address needs HOST:PORT: " + text);
  e.host = rest.substr(0, colon);
  e.port = rest.substr(colon + 1);
  return e;
}

// Latencies (µs) and counts per method within the measured window.
struct Stats {
  std::map<std::string, std::vector<std::uint32_t>> latency_us;
  std::map<std::string, std::uint64_t> errors;  // "method code"
  std::uint64_t cases = 0;
  std::uint64_t cases_ended = 0;    // completed or closed
  std::uint64_t cases_stalled = 0;  // no submittable open task (waiting on the clock)
};

struct Run {
  net::io_context io{1};
  tcp::endpoint endpoint;
  Endpoint where;
  std::string bearer;  // token for the upgrade request
  Options options;
  std::set<std::string> roles;
  // Each step's form filled from its JSON Schema (fill_form), as JSON text: per workflow version,
  // per step. The schema is the same for every case, so it is parsed once, not per answer.
  std::map<std::int64_t, std::map<std::string, std::string, std::less<>>> forms;
  int ready = 0;
  bool measuring = false;
  bool over = false;
  Clock::time_point start, deadline;
  net::steady_timer timer{io};
  Stats stats;
  std::vector<std::string> known_cases;
  std::string fatal;
};

double percentile(std::vector<std::uint32_t>& v, double q) {
  if (v.empty()) return 0;
  std::size_t i = std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(i), v.end());
  return v[i];
}

double as_number(const json::value& v) {
  if (v.is_int64()) return static_cast<double>(v.as_int64());
  if (v.is_uint64()) return static_cast<double>(v.as_uint64());
  if (v.is_double()) return v.as_double();
  return 0;
}

// A value valid for a JSON Schema property: numbers at the midpoint of [minimum, maximum] (or the
// bound that is given), booleans false, enums their first value, dates 1980-01-01, strings "x".
json::value fill_value(const json::object& property, json::storage_ptr sp) {
  std::string type = property.contains("type") ? std::string(property.at("type").as_string()) : "string";
  const json::value* min = property.if_contains("minimum");
  const json::value* max = property.if_contains("maximum");
  if (type == "integer" || type == "number") {
    double value = 0;
    if (min && max) value = (as_number(*min) + as_number(*max)) / 2;
    else if (min) value = as_number(*min);
    else if (max) value = std::min(0.0, as_number(*max));
    if (type == "integer") return static_cast<std::int64_t>(std::floor(value));
    return value;
  }
  if (type == "boolean") return false;
  if (const json::value* values = property.if_contains("enum"); values && !values->as_array().empty())
    return json::value(values->as_array().front(), sp);
  if (const json::value* format = property.if_contains("format")) {
    if (*format == "date") return json::value("1980-01-01", sp);
    if (*format == "date-time") return json::value("1980-01-01T00:00:00Z", sp);
  }
  return json::value("x", sp);
}

json::object fill_form(const json::object& schema, json::storage_ptr sp) {
  json::object data(sp);
  if (const json::value* properties = schema.if_contains("properties"))
    for (const auto& [name, property] : properties->as_object()) data[name] = fill_value(property.as_object(), sp);
  return data;
}

// Reads an answer as boost::json's parser goes, building no tree, and keeps what this client
// acts on: the error code, or the result's ids, status, version and revision and each open
// task's step, kind and roles. The rest (the forms' JSON Schemas, the submitted data, the
// timers) is only checked to be well-formed JSON. Building each whole view as a tree was a third
// of this thread's time, on the two cores it shares with the server it measures; a step's form
// is filled from its schema once (Run::forms) since the schema is the same for every case.
struct AnswerScan {
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);
  // Depths as counted here: 1 the answer, 2 "result", 3 "open_tasks", 4 a task, 5 its "roles".
  static constexpr int kKeptDepth = 5;

  struct Task {
    std::string step, kind;
    std::vector<std::string> roles;
  };

  int depth = 0;
  std::string keys[kKeptDepth + 1];  // keys[d]: the last key read in the object at depth d
  std::string text;                  // the key or string being read, across parts
  bool is_object = false, has_result = false;
  std::optional<std::int64_t> error_code;
  std::string case_id, patient_id, status;
  std::int64_t version = 0, revision = 0;
  std::vector<Task> tasks;  // the first task_count are this answer's (kept to reuse their memory)
  std::size_t task_count = 0;

  void clear() {
    depth = 0;
    for (auto& k : keys) k.clear();
    text.clear();
    is_object = has_result = false;
    error_code.reset();
    case_id.clear();
    patient_id.clear();
    status.clear();
    version = revision = 0;
    task_count = 0;
  }
  bool in_result(int at) const { return depth == at && keys[1] == "result"; }
  bool in_task(int at) const { return in_result(at) && keys[2] == "open_tasks"; }
  Task& task() { return tasks[task_count - 1]; }

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }
  bool on_object_begin(json::error_code&) {
    if (depth == 0) is_object = true;
    if (in_result(1)) has_result = true;
    if (in_task(3)) {
      if (++task_count > tasks.size()) tasks.emplace_back();
      task().step.clear();
      task().kind.clear();
      task().roles.clear();
    }
    return begin();
  }
  bool on_object_end(std::size_t, json::error_code&) { return --depth, true; }
  bool on_array_begin(json::error_code&) { return begin(); }
  bool on_array_end(std::size_t, json::error_code&) { return --depth, true; }
  bool on_key_part(json::string_view part, std::size_t, json::error_code&) {
    if (depth <= kKeptDepth) text.append(part);
    return true;
  }
  bool on_key(json::string_view part, std::size_t, json::error_code&) {
    if (depth <= kKeptDepth) keys[depth].assign(text.append(part));
    text.clear();
    return true;
  }
  bool on_string_part(json::string_view part, std::size_t, json::error_code&) {
    if (depth <= kKeptDepth) text.append(part);
    return true;
  }
  bool on_string(json::string_view part, std::size_t, json::error_code&) {
    if (depth > kKeptDepth) return true;
    text.append(part);
    if (in_result(2)) {
      if (keys[2] == "case_id") case_id = text;
      else if (keys[2] == "patient_id") patient_id = text;
      else if (keys[2] == "status") status = text;
    } else if (in_task(4) && task_count > 0) {
      if (keys[4] == "step") task().step = text;
      else if (keys[4] == "kind") task().kind = text;
    } else if (in_task(5) && task_count > 0 && keys[4] == "roles") {
      task().roles.push_back(text);
    }
    text.clear();
    return true;
  }
  bool on_number_part(json::string_view, json::error_code&) { return true; }
  bool on_int64(std::int64_t value, json::string_view, json::error_code&) {
    if (depth == 2 && keys[1] == "error" && keys[2] == "code") error_code = value;
    if (in_result(2) && keys[2] == "version") version = value;
    if (in_result(2) && keys[2] == "revision") revision = value;
    return true;
  }
  bool on_uint64(std::uint64_t, json::string_view, json::error_code&) { return true; }
  bool on_double(double, json::string_view, json::error_code&) { return true; }
  bool on_bool(bool, json::error_code&) { return true; }
  bool on_null(json::error_code&) { return true; }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }

 private:
  bool begin() {
    if (++depth <= kKeptDepth) keys[depth].clear();
    return true;
  }
};

// `s` as a JSON string.
void append_quoted(std::string& out, std::string_view s) {
  bool plain = std::all_of(s.begin(), s.end(), [](unsigned char c) { return c >= 0x20 && c < 0x80 && c != '"' && c != '\\'; });
  if (!plain) {
    out += json::serialize(json::string_view(s.data(), s.size()));
    return;
  }
  out += '"';
  out += s;
  out += '"';
}

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  enum class Mode { echo, walk, get, submit };

  Connection(Run& run, Mode mode, int index) : run_(run), mode_(mode), index_(index), ws_(run.io.get_executor()) {}

  void start() {
    beast::get_lowest_layer(ws_).async_connect(run_.endpoint, [self = shared_from_this()](beast::error_code ec) {
      if (ec) return self->fail("connect: " + ec.message());
      beast::error_code ignored;
      beast::get_lowest_layer(self->ws_).socket().set_option(tcp::no_delay(true), ignored);
      beast::get_lowest_layer(self->ws_).expires_never();
      self->ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
      self->ws_.read_message_max(64 * 1024 * 1024);
      std::string bearer = self->run_.bearer;
      self->ws_.set_option(websocket::stream_base::decorator([bearer](websocket::request_type& request) {
        if (!bearer.empty()) request.set(beast::http::field::authorization, "Bearer " + bearer);
      }));
      self->ws_.async_handshake(self->run_.where.host + ":" + self->run_.where.port, self->run_.where.target,
                                [self](beast::error_code ec) {
                                  if (ec) return self->fail("handshake: " + ec.message());
                                  self->ws_.text(true);
                                  self->setup();
                                });
    });
  }

  // Called for every connection once all are ready and the clock runs.
  void go() { next(); }

 private:
  // Called with a result; the answer is in answer_text_, as scanned in scan_.handler().
  using Callback = std::function<void()>;

  const AnswerScan& answer() const { return scan_.handler(); }

  void fail(const std::string& why) {
    if (run_.fatal.empty()) run_.fatal = why;
    run_.io.stop();
  }

  void setup() {
    if ((mode_ == Mode::get || mode_ == Mode::submit) && setup_left_ < 0) setup_left_ = run_.options.setup_cases;
    if (mode_ == Mode::get && setup_left_ > 0) return new_patient();
    if (mode_ == Mode::submit && setup_left_ > 0) return open_for_later();
    report_ready();
  }

  void report_ready() {
    if (++run_.ready < run_.options.connections) return;
    // The last connection is ready: start the clock for everyone.
    run_.measuring = true;
    run_.start = Clock::now();
    run_.deadline = run_.start + std::chrono::microseconds(static_cast<std::int64_t>(run_.options.seconds * 1e6));
    run_.timer.expires_at(run_.deadline);
    run_.timer.async_wait([&run = run_](beast::error_code) {
      run.over = true;
      run.io.stop();
    });
    for (auto& c : *all) c->go();
  }

  void next() {
    if (run_.over) return;
    switch (mode_) {
      case Mode::echo: return echo();
      case Mode::walk: return new_patient();
      case Mode::get: return read_case();
      case Mode::submit: return submit_next();
    }
  }

  // ---- echo: ~200-byte JSON messages, answered as they are
  void echo() {
    if (message_.empty()) {
      message_ = R"({"jsonrpc":"2.0","id":1,"method":"case.get","params":{"case_id":"c_0000000000000000"},)"
                 R"("padding":")";
      message_ += std::string(200 - message_.size() - 3, 'x') + "\"}";
    }
    send(message_, "echo", nullptr);
  }

  // ---- API walk
  // patient.create, then case.open for that patient; `then` runs with the case.open answer.
  void open_case(Callback then) {
    ++patients_;
    json::object params({{"given_name", "Bench"},
                         {"family_name", "Patient" + std::to_string(index_) + "x" + std::to_string(patients_)},
                         {"birth_date", "1980-01-01"}},
                        request_storage());
    call("patient.create", std::move(params), "", [this, then = std::move(then)]() {
      json::object params({{"patient_id", answer().patient_id}, {"workflow", run_.options.workflow}}, request_storage());
      call("case.open", std::move(params), "", then);
    });
  }

  void new_patient() {
    open_case([this] { walk(); });
  }

  // ---- submit: cases opened before the clock starts, kept as their case.open answer (text, not
  // parsed: a parsed view takes several times the memory and there may be tens of thousands).
  void open_for_later() {
    open_case([this] {
      opened_.push_back(answer_text_);
      if (--setup_left_ > 0) return open_for_later();
      report_ready();
    });
  }

  void submit_next() {
    if (opened_.empty()) return new_patient();
    answer_text_ = std::move(opened_.back());
    opened_.pop_back();
    if (!scan(answer_text_) || !answer().has_result) return fail("a kept case.open answer does not scan");
    walk();
  }

  // Submits the first open task this user may do, with a form filled from its schema; the answer
  // (the case view after it) is walked the same way, until the case ends or stalls.
  void walk() {
    const AnswerScan& view = answer();
    if (view.status != "active") return case_done(view.case_id, true);
    for (std::size_t i = 0; i < view.task_count; ++i) {
      const AnswerScan::Task& task = view.tasks[i];
      if (!task.kind.empty() && task.kind != "task") continue;
      bool allowed = false;
      for (const auto& role : task.roles) allowed = allowed || run_.roles.count(role);
      if (!allowed) continue;
      const std::string* form = form_for(view.version, task.step, i);
      if (!form) return;  // failed
      std::string params = R"({"case_id":)";
      append_quoted(params, view.case_id);
      params += R"(,"step":)";
      append_quoted(params, task.step);
      params += R"(,"data":)";
      params += *form;
      params += R"(,"revision":)";
      params += std::to_string(view.revision);
      params += '}';
      std::string case_id = view.case_id;
      return call_text("case.submit", params, std::move(case_id), [this] { walk(); });
    }
    case_done(view.case_id, false);
  }

  // The filled form (JSON text) for open task `index` of the answer in answer_text_: filled once
  // per workflow version and step, from the schema in the first answer that has that step open.
  const std::string* form_for(std::int64_t version, const std::string& step, std::size_t index) {
    auto& steps = run_.forms[version];
    if (auto known = steps.find(step); known != steps.end()) return &known->second;
    view_memory_.release();
    json::error_code jec;
    json::value parsed = json::parse(answer_text_, jec, json::storage_ptr(&view_memory_));
    const json::value* task = nullptr;
    if (!jec && parsed.is_object())
      if (const json::value* tasks = parsed.as_object().at("result").as_object().if_contains("open_tasks");
          tasks && tasks->is_array() && index < tasks->as_array().size())
        task = &tasks->as_array()[index];
    if (!task || !task->is_object() || task->as_object().at("step") != json::string_view(step) ||
        !task->as_object().at("schema").is_object()) {
      fail("open task " + step + " has no JSON Schema object");
      return nullptr;
    }
    std::string form = json::serialize(fill_form(task->as_object().at("schema").as_object(), json::storage_ptr(&view_memory_)));
    return &steps.emplace(step, std::move(form)).first->second;
  }

  void case_done(const std::string& case_id, bool ended) {
    if (run_.measuring) {
      ++run_.stats.cases;
      ++(ended ? run_.stats.cases_ended : run_.stats.cases_stalled);
    }
    if (mode_ == Mode::get && !run_.measuring) {
      run_.known_cases.push_back(case_id);
      if (--setup_left_ > 0) return new_patient();
      return report_ready();
    }
    next();
  }

  // ---- API reads: the answer is checked (a result for the very case asked for), not kept.
  void read_case() {
    const auto& cases = run_.known_cases;
    const std::string& case_id = cases[(static_cast<std::size_t>(index_) + reads_++ * 7) % cases.size()];
    call("case.get", json::object({{"case_id", case_id}}, request_storage()), case_id, [this] { next(); });
  }

  // ---- one request in flight
  // Requests are built in this connection's own buffer: one at a time, and dead once serialized.
  json::storage_ptr request_storage() { return json::storage_ptr(&request_memory_); }

  // `about`: the case the answer's result must be for ("" when the request names none).
  void call(const std::string& method, json::object params, std::string about, Callback done) {
    std::string text = json::serialize(params);
    request_memory_.release();
    call_text(method, text, std::move(about), std::move(done));
  }

  void call_text(const std::string& method, const std::string& params, std::string about, Callback done) {
    std::string text = R"({"jsonrpc":"2.0","id":)";
    text += std::to_string(++next_id_);
    text += R"(,"method":)";
    append_quoted(text, method);
    text += R"(,"params":)";
    text += params;
    text += '}';
    about_ = std::move(about);
    send(std::move(text), method, std::move(done));
  }

  void send(std::string text, const std::string& method, Callback done) {
    out_ = std::move(text);
    method_ = method;
    done_ = std::move(done);
    sent_at_ = Clock::now();
    ws_.async_write(net::buffer(out_), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->fail("write: " + ec.message());
      self->ws_.async_read(self->in_, [self](beast::error_code ec, std::size_t) { self->on_answer(ec); });
    });
  }

  // Scans `text` into scan_; false if it is not a well-formed JSON object.
  bool scan(const std::string& text) {
    scan_.reset();
    scan_.handler().clear();
    json::error_code jec;
    std::size_t used = scan_.write_some(false, text.data(), text.size(), jec);
    return !jec && used == text.size() && scan_.done() && answer().is_object;
  }

  void on_answer(beast::error_code ec) {
    if (run_.over) return;
    if (ec) return fail("read: " + ec.message());
    auto now = Clock::now();
    bool counted = run_.measuring && sent_at_ >= run_.start && now <= run_.deadline;
    if (counted)
      run_.stats.latency_us[method_].push_back(
          static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::microseconds>(now - sent_at_).count()));
    if (mode_ == Mode::echo) {
      if (in_.size() != out_.size()) return fail("echo: the answer differs from the message");
      in_.consume(in_.size());
      return next();
    }
    answer_text_.assign(static_cast<const char*>(in_.data().data()), in_.size());
    in_.consume(in_.size());
    if (!scan(answer_text_)) return fail("answer to " + method_ + " is not a JSON object");
    if (answer().error_code) {
      if (counted) ++run_.stats.errors[method_ + " " + std::to_string(*answer().error_code)];
      if (!run_.measuring) return fail(method_ + " failed during setup: " + answer_text_);
      return next();  // abandon this case, start over
    }
    if (!answer().has_result) return fail("answer to " + method_ + " has neither a result nor an error");
    if (!about_.empty() && answer().case_id != about_) return fail(method_ + " answered without case " + about_);
    auto done = std::move(done_);
    done();
  }

 public:
  std::vector<std::shared_ptr<Connection>>* all = nullptr;

 private:
  Run& run_;
  Mode mode_;
  int index_;
  // On the io_context's own executor: the type-erased default (any_io_executor) showed in this
  // thread's profile for every operation.
  websocket::stream<beast::basic_stream<tcp, net::io_context::executor_type>> ws_;
  beast::flat_buffer in_;
  std::string out_, method_, message_;
  std::string answer_text_;  // the last answer (or a kept case.open answer being walked)
  std::string about_;        // the case the answer in flight must be for, if any
  Callback done_;
  Clock::time_point sent_at_;
  std::int64_t next_id_ = 0;
  std::uint64_t patients_ = 0, reads_ = 0;
  int setup_left_ = -1;
  std::vector<std::string> opened_;  // --phase submit: case.open answers not yet walked
  alignas(16) unsigned char view_buffer_[64 * 1024];
  json::monotonic_resource view_memory_{view_buffer_, sizeof view_buffer_};
  alignas(16) unsigned char request_buffer_[16 * 1024];
  json::monotonic_resource request_memory_{request_buffer_, sizeof request_buffer_};
  json::basic_parser<AnswerScan> scan_{json::parse_options{}};
};

// Creates a token for the bench user with the roles the workflow's steps need (blocking, once).
std::string create_bench_token(const Endpoint& where, const std::string& admin_token, const std::string& roles) {
  net::io_context io;
  websocket::stream<beast::tcp_stream> ws(io);
  tcp::resolver resolver(io);
  beast::get_lowest_layer(ws).connect(resolver.resolve(where.host, where.port));
  ws.set_option(websocket::stream_base::decorator(
      [&](websocket::request_type& request) { request.set(beast::http::field::authorization, "Bearer " + admin_token); }));
  ws.handshake(where.host + ":" + where.port, where.target);
  json::array role_list;
  std::stringstream in(roles);
  for (std::string r; std::getline(in, r, ',');)
    if (!r.empty()) role_list.emplace_back(r);
  json::object request{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "auth.token.create"},
                       {"params", {{"user", "bench"}, {"roles", role_list}}}};
  ws.text(true);
  ws.write(net::buffer(json::serialize(request)));
  beast::flat_buffer buffer;
  ws.read(buffer);
  json::value answer = json::parse(beast::buffers_to_string(buffer.data()));
  if (!answer.as_object().contains("result"))
    throw std::runtime_error("auth.token.create failed (is --token an admin token?): " + json::serialize(answer));
  beast::error_code ignored;
  ws.close(websocket::close_code::normal, ignored);
  return std::string(answer.at("result").at("token").as_string());
}

int run_bench(Run& run, Connection::Mode mode, const std::string& label) {
  const Options& o = run.options;
  tcp::resolver resolver(run.io);
  run.endpoint = *resolver.resolve(run.where.host, run.where.port).begin();
  std::vector<std::shared_ptr<Connection>> connections;
  for (int i = 0; i < o.connections; ++i) {
    connections.push_back(std::make_shared<Connection>(run, mode, i));
    connections.back()->all = &connections;
  }
  for (auto& c : connections) c->start();
  run.io.run();
  if (!run.fatal.empty()) {
    std::cerr << "clinicflow_bench: " << run.fatal << "\n";
    return 1;
  }
  double seconds = std::chrono::duration<double>(run.deadline - run.start).count();
  std::uint64_t total = 0;
  std::vector<std::uint32_t> all;
  std::printf("%-14s %10s %12s %10s %10s\n", "method", "count", "per_s", "p50_us", "p99_us");
  for (auto& [method, v] : run.stats.latency_us) {
    total += v.size();
    all.insert(all.end(), v.begin(), v.end());
    double p50 = percentile(v, 0.50), p99 = percentile(v, 0.99);
    std::printf("%-14s %10zu %12.0f %10.0f %10.0f\n", method.c_str(), v.size(), static_cast<double>(v.size()) / seconds, p50, p99);
  }
  std::uint64_t errors = 0;
  for (auto& [key, n] : run.stats.errors) {
    std::printf("errors %-20s %llu\n", key.c_str(), static_cast<unsigned long long>(n));
    errors += n;
  }
  auto method_rate = [&](const std::string& m) {
    auto it = run.stats.latency_us.find(m);
    return it == run.stats.latency_us.end() ? 0.0 : static_cast<double>(it->second.size()) / seconds;
  };
  auto method_pct = [&](const std::string& m, double q) {
    auto it = run.stats.latency_us.find(m);
    return it == run.stats.latency_us.end() ? 0.0 : percentile(it->second, q);
  };
  double rate = static_cast<double>(total) / seconds;
  if (mode != Connection::Mode::echo)
    std::printf("cases: %llu in %.2f s (%.1f/s; %llu ended, %llu stopped with no submittable task)\n",
                static_cast<unsigned long long>(run.stats.cases), seconds, static_cast<double>(run.stats.cases) / seconds,
                static_cast<unsigned long long>(run.stats.cases_ended), static_cast<unsigned long long>(run.stats.cases_stalled));
  std::printf("RESULT mode=%s c=%d seconds=%.2f req_per_s=%.0f p50_us=%.0f p99_us=%.0f errors=%llu cases_per_s=%.1f "
              "get_per_s=%.0f get_p50_us=%.0f get_p99_us=%.0f submit_per_s=%.0f submit_p50_us=%.0f submit_p99_us=%.0f\n",
              label.c_str(), o.connections, seconds, rate, percentile(all, 0.5), percentile(all, 0.99),
              static_cast<unsigned long long>(errors), static_cast<double>(run.stats.cases) / seconds, method_rate("case.get"),
              method_pct("case.get", 0.5), method_pct("case.get", 0.99), method_rate("case.submit"), method_pct("case.submit", 0.5),
              method_pct("case.submit", 0.99));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(flag + " needs a value");
      return argv[++i];
    };
    try {
      if (flag == "--echo") o.echo = value();
      else if (flag == "--api") o.api = value();
      else if (flag == "--token") o.token = value();
      else if (flag == "--workflow") o.workflow = value();
      else if (flag == "--phase") o.phase = value();
      else if (flag == "--roles") o.roles = value();
      else if (flag == "-c") o.connections = std::stoi(value());
      else if (flag == "-d") o.seconds = std::stod(value());
      else if (flag == "--setup-cases") o.setup_cases = std::stoi(value());
      else if (flag == "-h" || flag == "--help") return std::cout << kUsage, 0;
      else throw std::runtime_error("unknown option '" + flag + "'");
    } catch (const std::exception& e) {
      std::cerr << "clinicflow_bench: " << e.what() << "\n" << kUsage;
      return 2;
    }
  }
  bool api = !o.api.empty();
  if (api == !o.echo.empty() || o.connections < 1 || o.seconds <= 0 || o.seconds > 600 ||
      (api && (o.token.empty() || o.workflow.empty())) ||
      (o.phase != "walk" && o.phase != "get" && o.phase != "submit" && o.phase != "both") ||
      o.setup_cases < 1) {
    std::cerr << kUsage;
    return 2;
  }
  try {
    if (!api) {
      Run run;
      run.options = o;
      run.where = parse_endpoint(o.echo);
      return run_bench(run, Connection::Mode::echo, "echo");
    }
    Endpoint where = parse_endpoint(o.api);
    std::string token = create_bench_token(where, o.token, o.roles);
    std::set<std::string> roles;
    std::stringstream in(o.roles);
    for (std::string r; std::getline(in, r, ',');) roles.insert(r);
    int status = 0;
    for (std::string phase : {"walk", "get", "submit"}) {
      if (o.phase == "both" ? phase == "submit" : o.phase != phase) continue;
      Run run;
      run.options = o;
      run.where = where;
      run.bearer = token;
      run.roles = roles;
      std::printf("== %s, %d connection(s), %.1f s\n", phase.c_str(), o.connections, o.seconds);
      auto mode = phase == "walk" ? Connection::Mode::walk : phase == "get" ? Connection::Mode::get : Connection::Mode::submit;
      status |= run_bench(run, mode, phase);
    }
    return status;
  } catch (const std::exception& e) {
    std::cerr << "clinicflow_bench: " << e.what() << "\n";
    return 1;
  }
}
