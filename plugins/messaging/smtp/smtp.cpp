#include "smtp.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>

namespace clinicflow::messaging {
namespace {

constexpr std::int64_t kDefaultTimeoutMs = 10000;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

bool is_ascii_printable(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

// A deliberately plain check of an address for the SMTP envelope: local@domain, printable ASCII
// or UTF-8, no spaces, no angle brackets, no control characters. The server has the last word.
bool is_mailbox(std::string_view a) {
  const auto at = a.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == a.size() || a.size() > 254) return false;
  return std::none_of(a.begin(), a.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7f || c == '<' || c == '>' || c == '(' || c == ')' || c == ',' || c == ';' ||
           c == '\\' || c == '"';
  });
}

constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64(std::string_view in) {
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                       static_cast<unsigned char>(in[i + 2]);
    out += {kBase64[v >> 18], kBase64[(v >> 12) & 63], kBase64[(v >> 6) & 63], kBase64[v & 63]};
  }
  if (i + 1 == in.size()) {
    const unsigned v = static_cast<unsigned char>(in[i]) << 16;
    out += {kBase64[v >> 18], kBase64[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
    out += {kBase64[v >> 18], kBase64[(v >> 12) & 63], kBase64[(v >> 6) & 63], '='};
  }
  return out;
}

// RFC 2047 encoded words ("=?UTF-8?B?...?="), split on UTF-8 character boundaries and folded
// onto continuation lines so that no line is longer than 76 characters. `used` is how much of
// the first line is taken already (e.g. "Subject: ").
std::string encoded_words(std::string_view text, std::size_t used) {
  std::string out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    // 12 characters of "=?UTF-8?B?" "?=", then 4 base64 characters per 3 bytes.
    const std::size_t room = 76 - (out.empty() ? std::min<std::size_t>(used, 40) : 1) - 12;
    std::size_t end = std::min(text.size(), pos + room / 4 * 3);
    while (end < text.size() && end > pos + 1 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
    if (!out.empty()) out += "\r\n ";
    out += "=?UTF-8?B?" + base64(text.substr(pos, end - pos)) + "?=";
    pos = end;
  }
  return out;
}

// A header value: as is when it is short printable ASCII, otherwise as encoded words. Line breaks
// never reach the header (no header injection).
std::string header_text(std::string_view raw, std::size_t used) {
  std::string s(raw);
  std::replace_if(s.begin(), s.end(), [](char c) { return c == '\r' || c == '\n' || c == '\t'; }, ' ');
  if (is_ascii_printable(s) && s.size() <= 900) return s;
  return encoded_words(s, used);
}

// "Name <address>" or "address" -> the From: header and the bare address.
void parse_from(const std::string& from, std::string& header, std::string& address) {
  const std::string f = trim(from);
  const auto open = f.rfind('<');
  std::string name;
  if (open != std::string::npos) {
    if (f.back() != '>') throw std::invalid_argument("setting 'from' must be an address or \"Name <address>\"");
    address = f.substr(open + 1, f.size() - open - 2);
    name = trim(std::string_view(f).substr(0, open));
    if (name.size() >= 2 && name.front() == '"' && name.back() == '"') name = name.substr(1, name.size() - 2);
  } else {
    address = f;
  }
  if (!is_mailbox(address)) throw std::invalid_argument("setting 'from' is not a valid email address");
  if (name.find_first_of("\r\n\"\\") != std::string::npos)
    throw std::invalid_argument("setting 'from': the display name must not contain quotes or line breaks");
  if (name.empty()) header = address;
  else if (is_ascii_printable(name)) header = "\"" + name + "\" <" + address + ">";
  else header = encoded_words(name, 6) + "\r\n <" + address + ">";
}

// RFC 5322 date in UTC, e.g. "Tue, 03 Mar 2026 14:05:09 +0000".
std::string rfc5322_date(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  static constexpr const char* day_names[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* month_names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const auto secs = floor<seconds>(t);
  const auto day_point = floor<days>(secs);
  const year_month_day ymd{day_point};
  const weekday wd{day_point};
  const hh_mm_ss hms{secs - day_point};
  char buf[64];
  const int n = std::snprintf(buf, sizeof buf, "%s, %02u %s %04d %02d:%02d:%02d +0000", day_names[wd.c_encoding()],
                              static_cast<unsigned>(ymd.day()), month_names[static_cast<unsigned>(ymd.month()) - 1],
                              static_cast<int>(ymd.year()), static_cast<int>(hms.hours().count()),
                              static_cast<int>(hms.minutes().count()), static_cast<int>(hms.seconds().count()));
  return std::string(buf, static_cast<std::size_t>(n));
}

// Message-ID local part from the message id: letters, digits, '-' and '_' as they are, any other
// byte as =XX. The same id always gives the same Message-ID (receivers can spot a resend).
std::string message_id_part(std::string_view id) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : id) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '_') out += c;
    else out += {'=', hex[u >> 4], hex[u & 15]};
  }
  return out;
}

// Splits text into lines at CRLF, CR or LF.
std::vector<std::string_view> lines_of(std::string_view text) {
  std::vector<std::string_view> lines;
  std::size_t start = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r' || text[i] == '\n') {
      lines.push_back(text.substr(start, i - start));
      if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      start = i + 1;
    }
  }
  if (start < text.size()) lines.push_back(text.substr(start));
  return lines;
}

// RFC 2045 quoted-printable of lines (hard breaks as CRLF, soft breaks keep lines <= 76).
std::string quoted_printable(const std::vector<std::string_view>& lines) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (std::string_view line : lines) {
    std::size_t column = 0;
    for (std::size_t i = 0; i < line.size(); ++i) {
      const auto u = static_cast<unsigned char>(line[i]);
      const bool last = i + 1 == line.size();
      std::string token;
      if ((u == ' ' || u == '\t') && !last) token = static_cast<char>(u);
      else if (u > 32 && u < 127 && u != '=') token = static_cast<char>(u);
      else token = {'=', hex[u >> 4], hex[u & 15]};
      if (column + token.size() > 75) {
        out += "=\r\n";
        column = 0;
      }
      out += token;
      column += token.size();
    }
    out += "\r\n";
  }
  return out;
}

struct Upload {
  const std::string* data;
  std::size_t offset = 0;
};

std::size_t read_upload(char* buffer, std::size_t size, std::size_t count, void* user) {
  auto* up = static_cast<Upload*>(user);
  const std::size_t n = std::min(size * count, up->data->size() - up->offset);
  std::memcpy(buffer, up->data->data() + up->offset, n);
  up->offset += n;
  return n;
}

// Removes every occurrence of `secret` from `text` (an error must never carry an address).
std::string scrub(std::string text, std::string_view secret) {
  if (secret.empty()) return text;
  for (std::size_t pos; (pos = text.find(secret)) != std::string::npos;) text.replace(pos, secret.size(), "<recipient>");
  return text;
}

}  // namespace

Manifest Smtp::manifest() {
  return {"smtp",
          "messaging",
          "1.0.0",
          "Delivers each message as a plain-text email through an SMTP server; the message address is the recipient.",
          {
              {"url", "string", nullptr,
               "The SMTP server: smtp://host:port (587 or 25, STARTTLS) or smtps://host:port (465, TLS from the "
               "start). Required."},
              {"from", "string", nullptr, "The sender: \"clinic@example.org\" or \"North Clinic <clinic@example.org>\". Required."},
              {"username", "string", "", "Log in (SMTP AUTH) with this user name; empty: no login."},
              {"password", "string", "", "The password for username."},
              {"starttls", "string", "required",
               "smtp:// only: \"required\" (never send anything in clear), \"optional\" (use TLS when offered) or \"off\"."},
              {"timeout_ms", "integer", kDefaultTimeoutMs, "Deadline for one attempt (connect to the end of the transfer), in milliseconds."},
              {"verify_tls", "boolean", true, "Check the server's certificate and name. Turn off only for testing."},
              {"ca_file", "string", "", "A PEM file of CA certificates to trust instead of the system's (e.g. a private CA)."},
          }};
}

Smtp::Smtp(const Settings& settings) {
  static std::once_flag curl_ready;
  std::call_once(curl_ready, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });

  auto required = [&](const char* name, const char* what) {
    if (!settings.has(name) || settings.values().at(name).is_null())
      throw std::invalid_argument(std::string("setting '") + name + "' is required (" + what + ")");
    return settings.string(name);
  };
  auto optional = [&](const char* name) { return settings.has(name) ? settings.string(name) : std::string(); };

  url_ = required("url", "the SMTP server, smtp://host:port or smtps://host:port");
  parse_from(required("from", "the sender address"), from_header_, from_address_);
  domain_ = from_address_.substr(from_address_.rfind('@') + 1);
  {
    std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> u(curl_url(), &curl_url_cleanup);
    if (!u || curl_url_set(u.get(), CURLUPART_URL, url_.c_str(), 0) != CURLUE_OK)
      throw std::invalid_argument("setting 'url' is not a valid URL (expected smtp://host:port or smtps://host:port)");
    auto part = [&](CURLUPart which) {
      char* text = nullptr;
      std::string out;
      if (curl_url_get(u.get(), which, &text, 0) == CURLUE_OK && text) out = text;
      curl_free(text);
      return out;
    };
    const std::string scheme = lower(part(CURLUPART_SCHEME));
    if (scheme != "smtp" && scheme != "smtps") throw std::invalid_argument("setting 'url' must start with smtp:// or smtps://");
    if (part(CURLUPART_HOST).empty()) throw std::invalid_argument("setting 'url' must name a host");
    if (!part(CURLUPART_USER).empty() || !part(CURLUPART_PASSWORD).empty())
      throw std::invalid_argument("setting 'url' must not contain a user name or password; use 'username' and 'password'");
    // libcurl says EHLO <the URL's path>; without one it would use this machine's host name, which
    // is often not a name the server accepts. Default to the domain of the sender.
    if (const std::string path = part(CURLUPART_PATH); path.empty() || path == "/") {
      char* full = nullptr;
      if (curl_url_set(u.get(), CURLUPART_PATH, ("/" + domain_).c_str(), CURLU_URLENCODE) == CURLUE_OK &&
          curl_url_get(u.get(), CURLUPART_URL, &full, 0) == CURLUE_OK && full)
        url_ = full;
      curl_free(full);
    }
  }

  username_ = optional("username");
  password_ = optional("password");
  if (username_.empty() && !password_.empty()) throw std::invalid_argument("setting 'password' needs 'username'");

  const std::string starttls = settings.has("starttls") ? settings.string("starttls") : std::string("required");
  if (starttls == "required") use_ssl_ = CURLUSESSL_ALL;
  else if (starttls == "optional") use_ssl_ = CURLUSESSL_TRY;
  else if (starttls == "off") use_ssl_ = CURLUSESSL_NONE;
  else throw std::invalid_argument("setting 'starttls' must be \"required\", \"optional\" or \"off\"");

  if (settings.has("timeout_ms")) {
    const std::int64_t ms = settings.integer("timeout_ms");
    if (ms < 1 || ms > 600000) throw std::invalid_argument("setting 'timeout_ms' must be between 1 and 600000");
    timeout_ms_ = static_cast<long>(ms);
  }
  if (settings.has("verify_tls")) verify_tls_ = settings.boolean("verify_tls");
  ca_file_ = optional("ca_file");
}

std::string Smtp::compose(const Message& m, std::chrono::system_clock::time_point now) const {
  const auto lines = lines_of(m.body);
  const bool plain = std::all_of(lines.begin(), lines.end(), [](std::string_view l) {
    return l.size() <= 998 && std::all_of(l.begin(), l.end(), [](char c) { return c != 0 && static_cast<unsigned char>(c) < 0x80; });
  });

  std::string out;
  out += "Date: " + rfc5322_date(now) + "\r\n";
  out += "From: " + from_header_ + "\r\n";
  out += "To: " + m.address + "\r\n";
  out += "Subject: " + header_text(m.subject, 9) + "\r\n";
  out += "Message-ID: <clinicflow." + message_id_part(m.id) + "@" + domain_ + ">\r\n";
  out += "MIME-Version: 1.0\r\n";
  out += "Content-Type: text/plain; charset=utf-8\r\n";
  out += std::string("Content-Transfer-Encoding: ") + (plain ? "7bit" : "quoted-printable") + "\r\n";
  out += "Auto-Submitted: auto-generated\r\n";
  out += "\r\n";
  if (plain) {
    for (std::string_view line : lines) {
      out += line;
      out += "\r\n";
    }
  } else {
    out += quoted_printable(lines);
  }
  return out;
}

Delivery Smtp::deliver(const Message& m) {
  if (m.id.empty()) return Delivery::failed("the message has no id");
  if (m.address.empty()) return Delivery::failed("the message has no address (an email address is needed)");
  if (!is_mailbox(m.address)) return Delivery::failed("the message address is not a valid email address");

  const std::string mail = compose(m, std::chrono::system_clock::now());
  Upload upload{&mail};

  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), &curl_easy_cleanup);
  if (!curl) return Delivery::retry("cannot start libcurl");
  CURL* c = curl.get();
  const std::string mail_from = "<" + from_address_ + ">";
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> rcpt(curl_slist_append(nullptr, ("<" + m.address + ">").c_str()),
                                                                   &curl_slist_free_all);
  char errbuf[CURL_ERROR_SIZE] = {0};

  curl_easy_setopt(c, CURLOPT_URL, url_.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_MAIL_FROM, mail_from.c_str());
  curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt.get());
  curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(c, CURLOPT_READFUNCTION, read_upload);
  curl_easy_setopt(c, CURLOPT_READDATA, &upload);
  curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(mail.size()));
  curl_easy_setopt(c, CURLOPT_USE_SSL, use_ssl_);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, verify_tls_ ? 1L : 0L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, verify_tls_ ? 2L : 0L);
  if (!ca_file_.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, ca_file_.c_str());
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms_);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms_);
  if (!username_.empty()) {
    curl_easy_setopt(c, CURLOPT_USERNAME, username_.c_str());
    curl_easy_setopt(c, CURLOPT_PASSWORD, password_.c_str());
  }

  const CURLcode rc = curl_easy_perform(c);
  if (rc == CURLE_OK) return Delivery::delivered();

  long code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  std::string what = errbuf[0] ? std::string(errbuf) : std::string(curl_easy_strerror(rc));
  while (!what.empty() && (what.back() == '\n' || what.back() == '\r')) what.pop_back();
  what = scrub(std::move(what), m.address);

  switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
      return Delivery::retry("timed out after " + std::to_string(timeout_ms_) + " ms: " + what);
    case CURLE_USE_SSL_FAILED:
      // starttls = "required" and the server did not offer STARTTLS (or it failed): nothing was
      // sent. A server or network problem, not one of this message: retried.
      return Delivery::retry("the server does not offer STARTTLS (starttls = \"required\"): " + what);
    case CURLE_LOGIN_DENIED:
      // Wrong credentials are the plugin's configuration, not the message: retried, so messages go
      // out once the password is fixed.
      return Delivery::retry("SMTP login failed" + (code ? " (" + std::to_string(code) + ")" : std::string()) + ": " + what);
    default: break;
  }
  if (code >= 500 && code < 600) return Delivery::failed("SMTP " + std::to_string(code) + ": " + what);
  if (code >= 400 && code < 500) return Delivery::retry("SMTP " + std::to_string(code) + ": " + what);
  return Delivery::retry(what);
}

}  // namespace clinicflow::messaging

CLINICFLOW_PLUGIN(clinicflow::messaging::Smtp)
