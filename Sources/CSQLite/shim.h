#ifndef RAFT_SQLITE_CSQLITE_SHIM_H
#define RAFT_SQLITE_CSQLITE_SHIM_H
#include <sqlite3.h>
#endif
