// A plugin written directly against the C ABI of <clinicflow/plugin.h>, without the C++ layer,
// compiled once per flaw (BAD_NO_CALL, BAD_ABI_MAJOR, ...) so that each library is broken in
// exactly one way. With BAD_NONE it is a working route plugin whose review accepts everything:
// the proof that the others are refused for their flaw and nothing else.
#include <clinicflow/plugin.h>

#include <cstdlib>
#include <cstring>

#ifndef BAD_PLUGIN_NAME
#error "BAD_PLUGIN_NAME must be defined"
#endif

namespace {

[[maybe_unused]] char* copy_out(const char* text) {
  std::size_t size = std::strlen(text) + 1;
  char* out = static_cast<char*>(std::malloc(size));
  if (out) std::memcpy(out, text, size);
  return out;
}

[[maybe_unused]] int instance_token = 0;

}  // namespace

extern "C" {

CLINICFLOW_EXPORT uint32_t clinicflow_plugin_abi(void) {
#if defined(BAD_ABI_MAJOR)
  return (2u << 16) | 0u;
#elif defined(BAD_ABI_MINOR)
  return (1u << 16) | 1u;
#else
  return CLINICFLOW_ABI_VERSION;
#endif
}

CLINICFLOW_EXPORT const char* clinicflow_plugin_manifest(void) {
#if defined(BAD_MANIFEST)
  return "name = \"" BAD_PLUGIN_NAME "\"  # TOML, not JSON";
#elif defined(BAD_NAME)
  return R"({"name": "someone_else", "kind": "route", "version": "1.0.0", "abi": "1.0", "settings": []})";
#elif defined(BAD_KIND)
  return R"({"name": ")" BAD_PLUGIN_NAME R"(", "kind": "scheduler", "version": "1.0.0", "abi": "1.0", "settings": []})";
#else
  return R"({"name": ")" BAD_PLUGIN_NAME R"(", "kind": "route", "version": "0.0.1", "abi": "1.0", "description": "C ABI test plugin", "settings": []})";
#endif
}

CLINICFLOW_EXPORT void* clinicflow_plugin_create(const char* /*settings_json*/, char** error) {
#if defined(BAD_CREATE)
  if (error) *error = copy_out("licence file /etc/bad_create.lic is missing");
  return nullptr;
#else
  (void)error;
  return &instance_token;
#endif
}

CLINICFLOW_EXPORT void clinicflow_plugin_destroy(void* /*instance*/) {}

#if !defined(BAD_NO_CALL)
CLINICFLOW_EXPORT int clinicflow_plugin_call(void* /*instance*/, const char* method, const char* /*request_json*/, char** response) {
  if (std::strcmp(method, "fields") == 0) {
    *response = copy_out(R"({"fields": []})");
    return 0;
  }
  *response = copy_out(R"({"status": "ok", "data": {"from": ")" BAD_PLUGIN_NAME R"("}})");
  return 0;
}
#endif

CLINICFLOW_EXPORT void clinicflow_plugin_free(char* text) { std::free(text); }

}  // extern "C"
