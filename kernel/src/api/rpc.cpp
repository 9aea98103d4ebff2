#include "api/rpc.hpp"

#include "engine/engine.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>

namespace clinicflow::api {
namespace json = boost::json;

std::string_view code_name(int c) {
  switch (c) {
    case 0: return "ok";
    case code::parse_error: return "parse_error";
    case code::invalid_request: return "invalid_request";
    case code::method_not_found: return "method_not_found";
    case code::invalid_params: return "invalid_params";
    case code::internal_error: return "internal_error";
    case code::not_authenticated: return "not_authenticated";
    case code::forbidden: return "forbidden";
    case code::not_found: return "not_found";
    case code::conflict: return "conflict";
    case code::refused: return "refused";
    default: return "error";
  }
}

namespace {

json::array fields_json(const std::vector<workflow::FieldProblem>& fields) {
  json::array out;
  for (const auto& f : fields) out.push_back(json::object{{"field", f.field}, {"problem", f.problem}});
  return out;
}

}  // namespace

RpcError RpcError::invalid_params(const std::vector<workflow::FieldProblem>& fields, std::string message) {
  return RpcError(code::invalid_params, std::move(message), json::value(json::object{{"fields", fields_json(fields)}}));
}

RpcError RpcError::refused(const std::string& reason, std::string message) {
  if (message.empty()) message = "refused: " + reason;
  return RpcError(code::refused, std::move(message), json::value(json::object{{"reason", reason}}));
}

RpcError to_rpc_error(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const RpcError& e) {
    return e;
  } catch (const engine::EngineError& e) {
    using K = engine::ErrorKind;
    switch (e.kind()) {
      case K::not_found: return RpcError(code::not_found, e.what());
      case K::conflict: return RpcError(code::conflict, e.what());
      case K::invalid_data: return RpcError::invalid_params(e.fields(), e.what());
      case K::forbidden: return RpcError(code::forbidden, e.what());
      case K::refused: return RpcError::refused(e.what());
      case K::unavailable: return RpcError::refused(e.what());
    }
    return RpcError(code::internal_error, "internal error");
  } catch (const std::exception& e) {
    // The text may name files, SQL or worse: it goes to the log (no clinical data is put in
    // exception texts by the kernel), never to the client.
    spdlog::error("internal error while answering a request: {}", e.what());
    return RpcError(code::internal_error, "internal error");
  } catch (...) {
    spdlog::error("internal error while answering a request: unknown exception");
    return RpcError(code::internal_error, "internal error");
  }
}

json::object error_response(const json::value& id, const RpcError& error) {
  json::object e{{"code", error.code()}, {"message", error.message()}};
  if (error.data()) e["data"] = *error.data();
  return json::object{{"jsonrpc", "2.0"}, {"error", std::move(e)}, {"id", id}};
}

std::string Result::text() const { return serialized_ ? *serialized_ : json::serialize(value_); }

namespace {

bool valid_id(const json::value& id) { return id.is_string() || id.is_number() || id.is_null(); }

// One serialized answer (see Result), or nothing for a notification.
using Answer = std::function<void(std::optional<std::string>)>;

std::string success_frame(const json::value& id, const Result& result) {
  std::string out = R"({"jsonrpc":"2.0","result":)";
  out += result.text();
  out += R"(,"id":)";
  out += json::serialize(id);
  out += '}';
  return out;
}

std::string error_frame(const json::value& id, const RpcError& error) { return json::serialize(error_response(id, error)); }

// Answers one element of a frame (a request object, or anything else found in a batch) through
// `answer`: nothing for a notification.
void handle_one(const json::value& element, const AsyncDispatch& dispatch, Answer answer) {
  if (!element.is_object())
    return answer(error_frame(nullptr, RpcError(code::invalid_request, "invalid request: a request is an object")));
  const json::object& o = element.get_object();
  const json::value* id = o.if_contains("id");
  json::value answer_id = id && valid_id(*id) ? *id : json::value(nullptr);
  std::vector<workflow::FieldProblem> problems;
  const json::value* version = o.if_contains("jsonrpc");
  if (!version || !version->is_string() || version->get_string() != "2.0") problems.push_back({"jsonrpc", "must be \"2.0\""});
  const json::value* method = o.if_contains("method");
  if (!method || !method->is_string()) problems.push_back({"method", "must be a string"});
  const json::value* params = o.if_contains("params");
  if (params && !params->is_object() && !params->is_array()) problems.push_back({"params", "must be an object or an array"});
  if (id && !valid_id(*id)) problems.push_back({"id", "must be a string, a number or null"});
  for (const auto& [key, value] : o)
    if (key != "jsonrpc" && key != "method" && key != "params" && key != "id")
      problems.push_back({std::string(key), "is not a member of a request"});
  if (!problems.empty()) {
    std::vector<workflow::FieldProblem> fields = problems;
    return answer(error_frame(answer_id, RpcError(code::invalid_request, "invalid request",
                                                  json::value(json::object{{"fields", fields_json(fields)}}))));
  }
  Request request;
  request.notification = id == nullptr;
  request.id = answer_id;
  request.method = std::string(method->get_string());
  request.params = params;
  // Answered once: a dispatch that responds and then throws is not answered twice.
  auto answered = std::make_shared<std::atomic<bool>>(false);
  Respond respond = [notification = request.notification, id = request.id, answer, answered](Result result,
                                                                                            std::exception_ptr error) {
    if (answered->exchange(true)) return;
    if (notification) return answer(std::nullopt);
    if (error) return answer(error_frame(id, to_rpc_error(error)));
    answer(success_frame(id, result));
  };
  try {
    dispatch(request, respond);
  } catch (...) {
    respond(nullptr, std::current_exception());
  }
}

// A batch being answered: each request's answer in its place, sent when the last one arrives.
struct BatchAnswer {
  std::mutex mutex;
  std::vector<std::optional<std::string>> answers;
  std::size_t waiting = 0;
  FrameDone done;
};

}  // namespace

void handle_frame_async(std::string_view text, const AsyncDispatch& dispatch, const RpcLimits& limits, FrameDone done) {
  json::parse_options options;
  options.max_depth = limits.max_depth;
  boost::system::error_code ec;
  // Shared: the requests' params point into it, and some answer after this returns.
  auto frame = std::make_shared<json::value>(json::parse(text, ec, {}, options));
  if (ec) {
    std::string why = ec == json::error::too_deep ? "nested more than " + std::to_string(limits.max_depth) + " levels deep"
                                                   : ec.message();
    return done(json::serialize(error_response(
        nullptr, RpcError(code::parse_error, "parse error: " + why, json::value(json::object{{"error", why}})))));
  }
  if (!frame->is_array()) {
    return handle_one(*frame, dispatch, [frame, done](std::optional<std::string> answer) { done(std::move(answer)); });
  }
  const json::array& batch = frame->get_array();
  if (batch.empty()) return done(json::serialize(error_response(nullptr, RpcError(code::invalid_request, "invalid request: empty batch"))));
  if (batch.size() > limits.max_batch)
    return done(json::serialize(error_response(
        nullptr, RpcError(code::invalid_request,
                          "invalid request: a batch holds at most " + std::to_string(limits.max_batch) + " requests",
                          json::value(json::object{{"max_batch", limits.max_batch}})))));
  auto state = std::make_shared<BatchAnswer>();
  state->answers.resize(batch.size());
  state->waiting = batch.size();
  state->done = std::move(done);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    handle_one(batch[i], dispatch, [frame, state, i](std::optional<std::string> answer) {
      std::string answers;
      {
        std::lock_guard lock(state->mutex);
        state->answers[i] = std::move(answer);
        if (--state->waiting != 0) return;
        for (auto& a : state->answers)
          if (a) (answers += answers.empty() ? '[' : ',') += *a;
      }
      if (answers.empty()) return state->done(std::nullopt);
      state->done(answers + ']');
    });
  }
}

std::optional<std::string> handle_frame(std::string_view text, const Dispatch& dispatch, const RpcLimits& limits) {
  // A synchronous dispatch answers before it returns, so the frame is answered before this returns.
  std::optional<std::string> out;
  handle_frame_async(
      text, [&dispatch](const Request& request, Respond respond) { respond(dispatch(request), nullptr); }, limits,
      [&out](std::optional<std::string> answer) { out = std::move(answer); });
  return out;
}

// ---------------------------------------------------------------------------------------- Params

Params::Params(const json::value* params) {
  static const json::object empty;
  if (!params) {
    object_ = &empty;
  } else if (params->is_object()) {
    object_ = &params->get_object();
  } else {
    object_ = &empty;
    problems_.push_back({"params", "must be an object (parameters are passed by name)"});
  }
}

const json::value* Params::find(std::string_view name, bool required) {
  known_.emplace_back(name);
  const json::value* v = object_->if_contains(name);
  if (v && v->is_null() && !required) return nullptr;  // an explicit null is the same as absent
  if (!v && required) problems_.push_back({std::string(name), "is required"});
  return v;
}

std::optional<std::string> Params::string(std::string_view name, bool required, std::size_t max_length) {
  const json::value* v = find(name, required);
  if (!v) return std::nullopt;
  if (!v->is_string()) {
    problems_.push_back({std::string(name), "must be a string"});
    return std::nullopt;
  }
  std::string s(v->get_string());
  if (s.empty()) {
    problems_.push_back({std::string(name), "must not be empty"});
    return std::nullopt;
  }
  if (s.size() > max_length) {
    problems_.push_back({std::string(name), "must be at most " + std::to_string(max_length) + " characters"});
    return std::nullopt;
  }
  return s;
}

std::optional<std::int64_t> Params::integer(std::string_view name, bool required, std::int64_t min, std::int64_t max) {
  const json::value* v = find(name, required);
  if (!v) return std::nullopt;
  std::optional<std::int64_t> n;
  if (v->is_int64()) n = v->get_int64();
  else if (v->is_uint64() && v->get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) n = static_cast<std::int64_t>(v->get_uint64());
  else if (v->is_uint64()) n = INT64_MAX;
  else if (v->is_double() && v->get_double() == static_cast<double>(static_cast<std::int64_t>(v->get_double())))
    n = static_cast<std::int64_t>(v->get_double());
  if (!n) {
    problems_.push_back({std::string(name), "must be an integer"});
    return std::nullopt;
  }
  if (*n < min || *n > max) {
    problems_.push_back({std::string(name), "must be between " + std::to_string(min) + " and " + std::to_string(max)});
    return std::nullopt;
  }
  return n;
}

const json::object* Params::object(std::string_view name, bool required) {
  const json::value* v = find(name, required);
  if (!v) return nullptr;
  if (!v->is_object()) {
    problems_.push_back({std::string(name), "must be an object"});
    return nullptr;
  }
  return &v->get_object();
}

std::optional<std::vector<std::string>> Params::string_list(std::string_view name, bool required, std::size_t max_items) {
  const json::value* v = find(name, required);
  if (!v) return std::nullopt;
  if (!v->is_array() || v->get_array().size() > max_items ||
      !std::all_of(v->get_array().begin(), v->get_array().end(), [](const json::value& e) { return e.is_string(); })) {
    problems_.push_back({std::string(name), "must be a list of at most " + std::to_string(max_items) + " strings"});
    return std::nullopt;
  }
  std::vector<std::string> out;
  for (const auto& e : v->get_array()) out.emplace_back(e.get_string());
  return out;
}

std::optional<bool> Params::boolean(std::string_view name, bool required) {
  const json::value* v = find(name, required);
  if (!v) return std::nullopt;
  if (!v->is_bool()) {
    problems_.push_back({std::string(name), "must be true or false"});
    return std::nullopt;
  }
  return v->get_bool();
}

void Params::problem(std::string field, std::string problem) { problems_.push_back({std::move(field), std::move(problem)}); }

void Params::finish() {
  for (const auto& [key, value] : *object_)
    if (std::find(known_.begin(), known_.end(), key) == known_.end())
      problems_.push_back({std::string(key), "is not a parameter of this method"});
  if (!problems_.empty()) throw RpcError::invalid_params(problems_);
}

}  // namespace clinicflow::api
