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
#include <boost/json/basic_parser_impl.hpp>  // basic_parser<AnswerCheck> is instantiated here

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

// Checks a case.get answer as boost::json's parser reads it, building no tree: the reads phase
// needs only to know the answer is well-formed JSON, and either an error (its code) or a result
// for the case that was asked for. Building the whole view cost this thread ~20 % of its time, in
// a phase whose figure is compared with an echo client that parses nothing.
struct AnswerCheck {
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);

  int depth = 0;
  bool is_object = false, has_result = false;
  std::string member;  // the top-level member being read ("result", "error", ...)
  std::string key;     // the last key read inside it
  std::string text;    // the key or string being read, across parts
  std::optional<std::int64_t> error_code;
  std::string case_id;

  void clear() {
    depth = 0;
    is_object = has_result = false;
    member.clear();
    key.clear();
    text.clear();
    error_code.reset();
    case_id.clear();
  }
  bool in(const char* top, const char* name) const { return depth == 2 && member == top && key == name; }

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }
  bool on_object_begin(json::error_code&) {
    if (depth == 0) is_object = true;
    if (depth == 1 && member == "result") has_result = true;
    ++depth;
    return true;
  }
  bool on_object_end(std::size_t, json::error_code&) { return --depth, true; }
  bool on_array_begin(json::error_code&) { return ++depth, true; }
  bool on_array_end(std::size_t, json::error_code&) { return --depth, true; }
  bool on_key_part(json::string_view part, std::size_t, json::error_code&) { return text.append(part), true; }
  bool on_key(json::string_view part, std::size_t, json::error_code&) {
    text.append(part);
    if (depth == 1) member = text;
    else if (depth == 2) key = text;
    text.clear();
    return true;
  }
  bool on_string_part(json::string_view part, std::size_t, json::error_code&) {
    if (in("result", "case_id")) text.append(part);
    return true;
  }
  bool on_string(json::string_view part, std::size_t, json::error_code&) {
    if (in("result", "case_id")) case_id = text.append(part);
    text.clear();
    return true;
  }
  bool on_number_part(json::string_view, json::error_code&) { return true; }
  bool on_int64(std::int64_t value, json::string_view, json::error_code&) {
    if (in("error", "code")) error_code = value;
    return true;
  }
  bool on_uint64(std::uint64_t, json::string_view, json::error_code&) { return true; }
  bool on_double(double, json::string_view, json::error_code&) { return true; }
  bool on_bool(bool, json::error_code&) { return true; }
  bool on_null(json::error_code&) { return true; }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  enum class Mode { echo, walk, get, submit };

  Connection(Run& run, Mode mode, int index) : run_(run), mode_(mode), index_(index), ws_(run.io) {}

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
  using Callback = std::function<void(json::object& answer)>;

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
  // patient.create, then case.open for that patient; `then` gets the new case's view.
  void open_case(std::function<void(json::object& view)> then) {
    ++patients_;
    json::object params({{"given_name", "Bench"},
                         {"family_name", "Patient" + std::to_string(index_) + "x" + std::to_string(patients_)},
                         {"birth_date", "1980-01-01"}},
                        request_storage());
    call("patient.create", std::move(params), [this, then = std::move(then)](json::object& answer) {
      json::object params({{"patient_id", answer.at("result").at("patient_id")}, {"workflow", run_.options.workflow}},
                          request_storage());
      call("case.open", std::move(params), [then](json::object& answer) { then(answer.at("result").as_object()); });
    });
  }

  void new_patient() {
    open_case([this](json::object& view) { walk(view); });
  }

  // ---- submit: cases opened before the clock starts, kept as their case.open answer (text, not
  // parsed: a parsed view takes several times the memory and there may be tens of thousands).
  void open_for_later() {
    open_case([this](json::object& view) {
      opened_.push_back(json::serialize(view));
      if (--setup_left_ > 0) return open_for_later();
      report_ready();
    });
  }

  void submit_next() {
    if (opened_.empty()) return new_patient();
    // Parsed into this connection's own buffer, like the answers (the previous view is gone).
    view_memory_.release();
    json::value view = json::parse(opened_.back(), json::storage_ptr(&view_memory_));
    opened_.pop_back();
    walk(view.as_object());
  }

  void walk(const json::object& view) {
    std::string case_id(view.at("case_id").as_string());
    if (view.at("status") != "active") return case_done(case_id, true);
    for (const auto& t : view.at("open_tasks").as_array()) {
      const auto& task = t.as_object();
      if (task.contains("kind") && task.at("kind") != "task") continue;
      bool allowed = false;
      for (const auto& role : task.at("roles").as_array()) allowed = allowed || run_.roles.count(std::string(role.as_string()));
      if (!allowed) continue;
      json::object params({{"case_id", case_id},
                           {"step", task.at("step")},
                           {"data", fill_form(task.at("schema").as_object(), request_storage())},
                           {"revision", view.at("revision")}},
                          request_storage());
      return call("case.submit", std::move(params), [this](json::object& answer) { walk(answer.at("result").as_object()); });
    }
    case_done(case_id, false);
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

  // ---- API reads
  void read_case() {
    const auto& cases = run_.known_cases;
    reading_ = cases[(static_cast<std::size_t>(index_) + reads_++ * 7) % cases.size()];
    call("case.get", json::object({{"case_id", reading_}}, request_storage()), nullptr);
  }

  // ---- one request in flight
  // Requests are built in this connection's own buffer: one at a time, and dead once serialized.
  json::storage_ptr request_storage() { return json::storage_ptr(&request_memory_); }

  void call(const std::string& method, json::object params, Callback done) {
    std::string text;
    {
      json::object request({{"jsonrpc", "2.0"}, {"id", ++next_id_}, {"method", method}, {"params", std::move(params)}},
                           request_storage());
      text = json::serialize(request);
    }
    request_memory_.release();
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
    if (mode_ == Mode::get && run_.measuring) return on_read_answer(counted);
    // Parsed into this connection's own buffer, reused for every answer: the generator should
    // spend its core on the traffic, not on malloc (the previous answer is gone by now).
    answer_memory_.release();
    parser_.reset(json::storage_ptr(&answer_memory_));
    json::error_code jec;
    parser_.write(static_cast<const char*>(in_.data().data()), in_.size(), jec);
    in_.consume(in_.size());
    json::value answer = jec ? json::value() : parser_.release();
    if (jec || !answer.is_object()) return fail("answer to " + method_ + " is not a JSON object");
    auto& object = answer.as_object();
    if (object.contains("error")) {
      std::string key = method_ + " " + json::serialize(object.at("error").at("code"));
      if (counted) ++run_.stats.errors[key];
      if (!run_.measuring) return fail(method_ + " failed during setup: " + json::serialize(object.at("error")));
      return next();  // abandon this case, start over
    }
    auto done = std::move(done_);
    done(object);
  }

  void on_read_answer(bool counted) {
    check_.reset();
    check_.handler().clear();
    json::error_code jec;
    check_.write_some(false, static_cast<const char*>(in_.data().data()), in_.size(), jec);
    in_.consume(in_.size());
    const AnswerCheck& answer = check_.handler();
    if (jec || !answer.is_object) return fail("answer to case.get is not a JSON object");
    if (answer.error_code) {
      if (counted) ++run_.stats.errors["case.get " + std::to_string(*answer.error_code)];
      return next();
    }
    if (!answer.has_result || answer.case_id != reading_) return fail("case.get answered without case " + reading_);
    next();
  }

 public:
  std::vector<std::shared_ptr<Connection>>* all = nullptr;

 private:
  Run& run_;
  Mode mode_;
  int index_;
  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer in_;
  std::string out_, method_, message_;
  Callback done_;
  Clock::time_point sent_at_;
  std::int64_t next_id_ = 0;
  std::uint64_t patients_ = 0, reads_ = 0;
  int setup_left_ = -1;
  std::vector<std::string> opened_;  // --phase submit: case.open answers not yet walked
  alignas(16) unsigned char answer_buffer_[64 * 1024];
  json::monotonic_resource answer_memory_{answer_buffer_, sizeof answer_buffer_};
  alignas(16) unsigned char view_buffer_[64 * 1024];
  json::monotonic_resource view_memory_{view_buffer_, sizeof view_buffer_};
  alignas(16) unsigned char request_buffer_[16 * 1024];
  json::monotonic_resource request_memory_{request_buffer_, sizeof request_buffer_};
  json::parser parser_;
  json::basic_parser<AnswerCheck> check_{json::parse_options{}};
  std::string reading_;  // the case a case.get in flight asks for
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
