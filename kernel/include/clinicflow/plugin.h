/*
 * Clinicflow plugin ABI — the stable C boundary between the Clinicflow kernel and a plugin.
 *
 * SPDX-License-Identifier: MIT
 * Copyright (c) 2026 the Clinicflow authors.
 * Permission is hereby granted, free of charge, to any person obtaining a copy of this header,
 * to deal in it without restriction, including the rights to use, copy, modify, merge, publish,
 * distribute, sublicense and/or sell copies, and to permit persons to whom it is furnished to do
 * so. THE HEADER IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND. (Full text: LICENSE-SDK.)
 * Plugins built against it may be closed-source.
 *
 * A plugin is a shared library that exports the six functions below with C linkage. Everything
 * else crosses as UTF-8 JSON text. The kernel checks the ABI version first: a plugin loads when
 * its major version equals the kernel's and its minor version is not greater. New entries are
 * only ever appended (a new minor version); existing ones never change meaning.
 *
 * Most authors do not use this header directly: <clinicflow/plugin.hpp> implements it for a C++
 * class with one macro.
 */
#ifndef CLINICFLOW_PLUGIN_H
#define CLINICFLOW_PLUGIN_H

#include <stdint.h>

#define CLINICFLOW_ABI_MAJOR 1
#define CLINICFLOW_ABI_MINOR 0
/* (major << 16) | minor */
#define CLINICFLOW_ABI_VERSION ((uint32_t)((CLINICFLOW_ABI_MAJOR << 16) | CLINICFLOW_ABI_MINOR))

#if defined(_WIN32)
#define CLINICFLOW_EXPORT __declspec(dllexport)
#else
#define CLINICFLOW_EXPORT __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI version the plugin was built against: CLINICFLOW_ABI_VERSION. */
typedef uint32_t (*clinicflow_plugin_abi_fn)(void);

/* The manifest, as JSON text owned by the plugin and valid while it is loaded:
 *   {"name": "iv_ketamine", "kind": "route" | "billing" | "messaging", "version": "1.2.0",
 *    "abi": "1.0", "description": "...",
 *    "settings": [{"name": "mg_per_kg", "type": "number", "default": 0.5, "description": "..."}]}
 * Setting types: "string", "integer", "number", "boolean", "array", "table". */
typedef const char* (*clinicflow_plugin_manifest_fn)(void);

/* Creates an instance from its settings (a JSON object: the server configuration's
 * [plugins.<name>] table, with the manifest's defaults filled in). Returns NULL on failure and
 * sets *error to a message the kernel frees with clinicflow_plugin_free. */
typedef void* (*clinicflow_plugin_create_fn)(const char* settings_json, char** error);

typedef void (*clinicflow_plugin_destroy_fn)(void* instance);

/* Handles one request. `method` is one of:
 *   "fields"   {"step_settings": {...}}                      -> {"fields": [field, ...]}
 *   "review"   step request (a task's submission)            -> step result
 *   "run"      step request (an automatic step)              -> step result
 *   "deliver"  message                                       -> delivery
 * (shapes: docs/plugins.md). Returns 0 and sets *response to the JSON answer; returns non-zero
 * and sets *response to an error message. Either way the kernel frees *response with
 * clinicflow_plugin_free. The kernel may call from several threads, one call per instance at
 * a time. */
typedef int (*clinicflow_plugin_call_fn)(void* instance, const char* method, const char* request_json, char** response);

/* Frees text the plugin returned. */
typedef void (*clinicflow_plugin_free_fn)(char* text);

/* The six functions a plugin exports, by these names (CLINICFLOW_PLUGIN in plugin.hpp defines
 * them). Declared here so that a plugin written in C has its definitions checked against them,
 * and a plugin's own tests can call them; the kernel finds them with dlsym. */
CLINICFLOW_EXPORT uint32_t clinicflow_plugin_abi(void);
CLINICFLOW_EXPORT const char* clinicflow_plugin_manifest(void);
CLINICFLOW_EXPORT void* clinicflow_plugin_create(const char* settings_json, char** error);
CLINICFLOW_EXPORT void clinicflow_plugin_destroy(void* instance);
CLINICFLOW_EXPORT int clinicflow_plugin_call(void* instance, const char* method, const char* request_json, char** response);
CLINICFLOW_EXPORT void clinicflow_plugin_free(char* text);

#define CLINICFLOW_SYMBOL_ABI "clinicflow_plugin_abi"
#define CLINICFLOW_SYMBOL_MANIFEST "clinicflow_plugin_manifest"
#define CLINICFLOW_SYMBOL_CREATE "clinicflow_plugin_create"
#define CLINICFLOW_SYMBOL_DESTROY "clinicflow_plugin_destroy"
#define CLINICFLOW_SYMBOL_CALL "clinicflow_plugin_call"
#define CLINICFLOW_SYMBOL_FREE "clinicflow_plugin_free"

#ifdef __cplusplus
}
#endif

#endif /* CLINICFLOW_PLUGIN_H */
