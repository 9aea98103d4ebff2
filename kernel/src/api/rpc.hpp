#pragma once
// JSON-RPC 2.0 framing (https://www.jsonrpc.org/specification): parsing one text frame into
// requests, notifications and batches, dispatching each, and building the answer frame. Knows
// nothing of the methods themselves.
#include "workflow/form.hpp"

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <concepts>
#include <cstdint>
#include <exception>
#include <memory>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace clinicflow::api {

namespace code {
inline constexpr int parse_error = -32700;
inline constexpr int invalid_request = -32600;
inline constexpr int method_not_found = -32601;
inline constexpr int invalid_params = -32602;
inline constexpr int internal_error = -32603;
inline constexpr int not_authenticated = -32001;
inline constexpr int forbidden = -32003;
inline constexpr int not_found = -32004;
inline constexpr int conflict = -32009;
inline constexpr int refused = -32010;
}  // namespace code

// "ok" names success; each error code has a short name used in the audit log.
std::string_view code_name(int code);

// An error the API answers with as it is: code, message, optional data.
class RpcError : public std::exception {
 public:
  RpcError(int code, std::string message, std::optional<boost::json::value> data = std::nullopt)
      : code_(code), message_(std::move(message)), data_(std::move(data)) {}
  int code() const { return code_; }
  const std::string& message() const { return message_; }
  const std::optional<boost::json::value>& data() const { return data_; }
  const char* what() const noexcept override { return message_.c_str(); }

  static RpcError invalid_params(const std::vector<workflow::FieldProblem>& fields, std::string message = "invalid params");
  static RpcError refused(const std::string& reason, std::string message = {});

 private:
  int code_;
  std::string message_;
  std::optional<boost::json::value> data_;
};

// Turns any exception into the error to answer with: RpcError as it is; engine::EngineError by
// its kind; anything else -32603 without its text (which may name files or SQL).
RpcError to_rpc_error(std::exception_ptr error);

struct Request {
  boost::json::value id;  // null for notifications (and for requests with "id": null)
  bool notification = false;
  std::string method;
  const boost::json::value* params = nullptr;  // object or array; null when absent
};

// Runs one request and returns its result, or throws (RpcError, EngineError, anything).
using Dispatch = std::function<boost::json::value(const Request&)>;

// A method's result: a JSON value, or JSON text that boost::json serialized earlier (a case view
// kept for the next read), which goes into the answer as it is. The answer frame is then put
// together from serialized parts: `{"jsonrpc":"2.0","result":` RESULT `,"id":` ID `}`, a batch
// as `[` ANSWER `,` ... `]`; every part is valid JSON (boost::json's output, or a case view that
// engine::case_view_json wrote through boost::json's serializer), so the frame is too.
// Reason: building the envelope as a value copies the whole result into it (measured: ~15 % of
// the I/O thread's time per case.get went to that copy and to serializing the view again).
class Result {
 public:
  Result() = default;  // null
  template <class T>
    requires std::constructible_from<boost::json::value, T&&>
  Result(T&& value) : value_(std::forward<T>(value)) {}  // NOLINT: implicit, as a JSON value
  static Result serialized(std::shared_ptr<const std::string> json) {
    Result r;
    r.serialized_ = std::move(json);
    return r;
  }
  // The result as JSON text.
  std::string text() const;

 private:
  boost::json::value value_;
  std::shared_ptr<const std::string> serialized_;  // when set, the result (value_ unused)
};

// A request's answer, given once: its result, or the error (as for Dispatch). May be given
// later and on another thread (a write is answered once it is durable).
using Respond = std::function<void(Result result, std::exception_ptr error)>;
// Starts one request; answers through `respond`, now or later. May also throw (as Dispatch).
using AsyncDispatch = std::function<void(const Request&, Respond respond)>;
// The answer frame of a whole text frame: nothing when it held only notifications.
using FrameDone = std::function<void(std::optional<std::string> answer)>;

struct RpcLimits {
  std::size_t max_batch = 100;      // requests in one batch
  std::size_t max_depth = 32;       // nesting of arrays and objects in a frame
};

// Parses `text`, dispatches every request in it, and returns the answer frame; nothing when the
// frame held only notifications.
std::optional<std::string> handle_frame(std::string_view text, const Dispatch& dispatch, const RpcLimits& limits = {});

// The same, with requests that may answer later: the requests of a batch are all started in
// order, then the batch is answered once every one of them has answered (in request order).
void handle_frame_async(std::string_view text, const AsyncDispatch& dispatch, const RpcLimits& limits, FrameDone done);

boost::json::object error_response(const boost::json::value& id, const RpcError& error);

// By-name parameters, checked all at once: each accessor records a problem instead of throwing,
// and finish() throws -32602 listing every problem (unknown names included).
class Params {
 public:
  // `params` null means none were given ({}); an array is a problem (params are by name).
  explicit Params(const boost::json::value* params);

  std::optional<std::string> string(std::string_view name, bool required, std::size_t max_length = 1000);
  std::optional<std::int64_t> integer(std::string_view name, bool required, std::int64_t min, std::int64_t max);
  const boost::json::object* object(std::string_view name, bool required);
  std::optional<std::vector<std::string>> string_list(std::string_view name, bool required, std::size_t max_items = 100);
  std::optional<bool> boolean(std::string_view name, bool required);
  void problem(std::string field, std::string problem);
  bool ok() const { return problems_.empty(); }
  void finish();

 private:
  const boost::json::value* find(std::string_view name, bool required);

  const boost::json::object* object_ = nullptr;
  std::vector<std::string> known_;
  std::vector<workflow::FieldProblem> problems_;
};

}  // namespace clinicflow::api
