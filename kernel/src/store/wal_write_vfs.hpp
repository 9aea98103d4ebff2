#pragma once
// A SQLite VFS over the default one that hands each transaction's write-ahead-log frames to
// the file in one write instead of two per frame (see wal_write_vfs.cpp for when it flushes).

namespace clinicflow::store {

// Registers the VFS on first use; returns its name for sqlite3_open_v2, or nullptr when SQLite
// has no default VFS to wrap (then connections open on the default, as before).
const char* wal_write_vfs();

}  // namespace clinicflow::store
