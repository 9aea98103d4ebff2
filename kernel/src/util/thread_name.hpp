#pragma once

#include <pthread.h>

namespace clinicflow::util {

// Names the calling thread as `top -H`, `perf` and /proc/PID/task/*/comm show it, so that a
// profile or a stuck thread can be told apart from the others (Linux: at most 15 characters).
inline void name_this_thread(const char* name) { pthread_setname_np(pthread_self(), name); }

}  // namespace clinicflow::util
