// The `_db` extension module: the pool (pool.h) for tasklets. A call converts
// its parameters to Values with the interpreter lock, parks the calling
// tasklet on the engine's reactor seam (await_result) while a database thread
// runs the job, and converts the rows back; every other tasklet runs
// meanwhile. db/python/db.py is the API scripts use.
#define PY_SSIZE_T_CLEAN  // the s# format takes a Py_ssize_t
#include "shard/db/python_module.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>

#include "core/cxx_boundary.h"
#include "shard/db/pool.h"
#include "shard/engine/await_completion.h"

namespace shard::db {
namespace {

std::shared_ptr<Pool> g_pool;  // touched with the interpreter lock only
PyObject* g_error = nullptr;   // _db.Error
PyObject* g_decimal = nullptr; // decimal.Decimal
PyObject* g_datetime = nullptr;
PyObject* g_date = nullptr;
PyObject* g_timedelta = nullptr;
constexpr double kDefaultTimeoutS = 30.0;  // seconds a call waits unless told: db.DEFAULT_TIMEOUT

// ---- Python -> Value -------------------------------------------------------

// datetime.timedelta -> TIME text "[-]H:MM:SS.ffffff", as MySQLdb binds it.
bool timedelta_to_text(PyObject* delta, std::string& out) {
  PyObject* total = PyObject_CallMethod(delta, "total_seconds", nullptr);
  if (total == nullptr) return false;
  const double seconds = PyFloat_AsDouble(total);
  Py_DECREF(total);
  if (seconds == -1 && PyErr_Occurred()) return false;
  const long long us = std::llround(std::fabs(seconds) * 1e6);
  char text[48];
  std::snprintf(text, sizeof text, "%s%lld:%02lld:%02lld.%06lld", seconds < 0 ? "-" : "", us / 3'600'000'000LL,
                us / 60'000'000 % 60, us / 1'000'000 % 60, us % 1'000'000);
  out = text;
  return true;
}

// TIME text "[-]H:MM:SS[.f...]" -> datetime.timedelta, as MySQLdb returns it;
// nullptr without an error when the text is not that shape.
PyObject* time_to_timedelta(const std::string& s) {
  const bool negative = !s.empty() && s[0] == '-';
  long long hours = 0, minutes = 0, seconds = 0, micro = 0;
  int used = 0;
  if (std::sscanf(s.c_str() + (negative ? 1 : 0), "%lld:%lld:%lld%n", &hours, &minutes, &seconds, &used) != 3) return nullptr;
  const char* fraction = s.c_str() + (negative ? 1 : 0) + used;
  if (*fraction == '.') {
    long long scale = 100000;
    for (++fraction; *fraction >= '0' && *fraction <= '9' && scale > 0; ++fraction, scale /= 10) micro += (*fraction - '0') * scale;
  }
  const long long sign = negative ? -1 : 1;
  return PyObject_CallFunction(g_timedelta, "iLL", 0, sign * (hours * 3600 + minutes * 60 + seconds), sign * micro);
}

bool to_value(PyObject* object, Py_ssize_t index, Value& v) {
  if (object == Py_None) return true;
  if (PyBool_Check(object) || PyLong_Check(object)) {
    int overflow = 0;
    long long i = PyLong_AsLongLongAndOverflow(object, &overflow);
    if (i == -1 && PyErr_Occurred()) return false;
    if (overflow == 0) {
      v.kind = Value::Kind::kInt;
      v.i = i;
      return true;
    }
    unsigned long long u = PyLong_AsUnsignedLongLong(object);  // OverflowError beyond 64 bits
    if (u == static_cast<unsigned long long>(-1) && PyErr_Occurred()) return false;
    v.kind = Value::Kind::kUInt;
    v.u = u;
    return true;
  }
  if (PyFloat_Check(object)) {
    v.kind = Value::Kind::kDouble;
    v.d = PyFloat_AS_DOUBLE(object);
    return true;
  }
  if (PyUnicode_Check(object)) {
    Py_ssize_t size = 0;
    const char* text = PyUnicode_AsUTF8AndSize(object, &size);
    if (text == nullptr) return false;
    v.kind = Value::Kind::kText;
    v.s.assign(text, static_cast<size_t>(size));
    return true;
  }
  if (PyObject_CheckBuffer(object)) {
    Py_buffer view;
    if (PyObject_GetBuffer(object, &view, PyBUF_SIMPLE) < 0) return false;
    v.kind = Value::Kind::kBytes;
    v.s.assign(static_cast<const char*>(view.buf), static_cast<size_t>(view.len));
    PyBuffer_Release(&view);
    return true;
  }
  // Exact decimals and dates travel as text the server parses: never as SQL.
  PyObject* text = nullptr;
  if (PyObject_TypeCheck(object, reinterpret_cast<PyTypeObject*>(g_decimal))) {
    v.kind = Value::Kind::kDecimal;
    text = PyObject_Str(object);
  } else if (PyObject_TypeCheck(object, reinterpret_cast<PyTypeObject*>(g_datetime))) {
    v.kind = Value::Kind::kDateTime;
    text = PyObject_CallMethod(object, "isoformat", "s", " ");
  } else if (PyObject_TypeCheck(object, reinterpret_cast<PyTypeObject*>(g_date))) {
    v.kind = Value::Kind::kDate;
    text = PyObject_CallMethod(object, "isoformat", nullptr);
  } else if (PyObject_TypeCheck(object, reinterpret_cast<PyTypeObject*>(g_timedelta))) {
    v.kind = Value::Kind::kTime;
    return timedelta_to_text(object, v.s);
  } else {
    PyErr_Format(PyExc_TypeError, "db parameter %zd: cannot bind a %.100s", index + 1, Py_TYPE(object)->tp_name);
    return false;
  }
  if (text == nullptr) return false;
  const char* utf8 = PyUnicode_AsUTF8(text);
  if (utf8 != nullptr) v.s = utf8;
  Py_DECREF(text);
  return utf8 != nullptr;
}

// ---- Value -> Python -------------------------------------------------------

PyObject* from_text(PyObject* type, const char* method, const std::string& s) {
  PyObject* text = PyUnicode_FromStringAndSize(s.data(), static_cast<Py_ssize_t>(s.size()));
  if (text == nullptr) return nullptr;
  PyObject* value = method == nullptr ? PyObject_CallOneArg(type, text) : PyObject_CallMethod(type, method, "O", text);
  Py_DECREF(text);
  return value;
}

PyObject* to_python(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kNull: Py_RETURN_NONE;
    case Value::Kind::kInt: return PyLong_FromLongLong(v.i);
    case Value::Kind::kUInt: return PyLong_FromUnsignedLongLong(v.u);
    case Value::Kind::kDouble: return PyFloat_FromDouble(v.d);
    case Value::Kind::kBytes: return PyBytes_FromStringAndSize(v.s.data(), static_cast<Py_ssize_t>(v.s.size()));
    case Value::Kind::kDecimal: return from_text(g_decimal, nullptr, v.s);
    case Value::Kind::kDateTime:
      // A zero date ("0000-00-00 ...") has no Python value: it stays text.
      if (v.s.rfind("0000-00-00", 0) == 0) break;
      return from_text(g_datetime, "fromisoformat", v.s);
    case Value::Kind::kDate:
      if (v.s.rfind("0000-00-00", 0) == 0) break;
      return from_text(g_date, "fromisoformat", v.s);
    case Value::Kind::kTime:
      if (PyObject* delta = time_to_timedelta(v.s)) return delta;
      if (PyErr_Occurred()) return nullptr;
      break;
    case Value::Kind::kText: break;
  }
  return PyUnicode_DecodeUTF8(v.s.data(), static_cast<Py_ssize_t>(v.s.size()), "surrogateescape");
}

PyObject* rows_to_python(const Result& result, bool named) {
  PyObject* rows = PyList_New(static_cast<Py_ssize_t>(result.rows.size()));
  if (rows == nullptr) return nullptr;
  std::vector<PyObject*> names;  // borrowed from `keys`
  PyObject* keys = nullptr;
  if (named) {
    keys = PyTuple_New(static_cast<Py_ssize_t>(result.columns.size()));
    if (keys == nullptr) return Py_DECREF(rows), nullptr;
    for (size_t c = 0; c < result.columns.size(); ++c) {
      PyObject* name = PyUnicode_FromStringAndSize(result.columns[c].data(), static_cast<Py_ssize_t>(result.columns[c].size()));
      if (name == nullptr) return Py_DECREF(keys), Py_DECREF(rows), nullptr;
      PyTuple_SET_ITEM(keys, static_cast<Py_ssize_t>(c), name);
      names.push_back(name);
    }
  }
  for (size_t r = 0; r < result.rows.size(); ++r) {
    const Row& source = result.rows[r];
    PyObject* row = named ? PyDict_New() : PyTuple_New(static_cast<Py_ssize_t>(source.size()));
    if (row == nullptr) return Py_XDECREF(keys), Py_DECREF(rows), nullptr;
    PyList_SET_ITEM(rows, static_cast<Py_ssize_t>(r), row);
    for (size_t c = 0; c < source.size(); ++c) {
      PyObject* value = to_python(source[c]);
      if (value == nullptr) return Py_XDECREF(keys), Py_DECREF(rows), nullptr;
      if (named) {
        int set = PyDict_SetItem(row, names[c], value);
        Py_DECREF(value);
        if (set < 0) return Py_XDECREF(keys), Py_DECREF(rows), nullptr;
      } else {
        PyTuple_SET_ITEM(row, static_cast<Py_ssize_t>(c), value);
      }
    }
  }
  Py_XDECREF(keys);
  return rows;
}

// _db.Error("[code] message") with .code, .sqlstate and .message.
PyObject* raise_error(const Result& result) {
  PyObject* error = PyObject_CallFunction(g_error, "s", ("[" + std::to_string(result.error) + "] " + result.message).c_str());
  if (error == nullptr) return nullptr;
  PyObject* code = PyLong_FromLong(result.error);
  PyObject* sqlstate = PyUnicode_DecodeUTF8(result.sqlstate.data(), static_cast<Py_ssize_t>(result.sqlstate.size()), "replace");
  PyObject* message = PyUnicode_DecodeUTF8(result.message.data(), static_cast<Py_ssize_t>(result.message.size()), "replace");
  if (code != nullptr && sqlstate != nullptr && message != nullptr && PyObject_SetAttrString(error, "code", code) == 0 &&
      PyObject_SetAttrString(error, "sqlstate", sqlstate) == 0 && PyObject_SetAttrString(error, "message", message) == 0) {
    PyErr_SetObject(g_error, error);
  }
  Py_XDECREF(code);
  Py_XDECREF(sqlstate);
  Py_XDECREF(message);
  Py_DECREF(error);
  return nullptr;
}

Pool* pool_or_raise() {
  if (g_pool == nullptr) PyErr_SetString(PyExc_RuntimeError, "db is not connected: call db.connect() first");
  return g_pool.get();
}

// ---- module functions ------------------------------------------------------

PyObject* db_start(PyObject*, PyObject* args, PyObject* kwargs) {
  static const char* keywords[] = {"host", "port", "socket", "user", "password", "database", "pool_size", "connect_timeout",
                                   "ssl_ca", "ssl_cert", "ssl_key", nullptr};
  Config config;
  const char *host = "", *socket = "", *user = "", *password = "", *database = "";
  const char *ssl_ca = "", *ssl_cert = "", *ssl_key = "";
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sissssii|sss", const_cast<char**>(keywords), &host, &config.port, &socket,
                                   &user, &password, &database, &config.pool_size, &config.connect_timeout_s, &ssl_ca,
                                   &ssl_cert, &ssl_key)) {
    return nullptr;
  }
  if (g_pool != nullptr) {
    PyErr_SetString(PyExc_RuntimeError, "db is already connected: db.close() first");
    return nullptr;
  }
  if (config.pool_size < 1 || config.pool_size > 256) {
    PyErr_Format(PyExc_ValueError, "pool_size must be 1..256, not %d", config.pool_size);
    return nullptr;
  }
  config.host = host;
  config.socket = socket;
  config.user = user;
  config.password = password;
  config.database = database;
  config.ssl_ca = ssl_ca;
  config.ssl_cert = ssl_cert;
  config.ssl_key = ssl_key;
  auto pool = std::make_shared<Pool>(std::move(config));
  pool->start();
  g_pool = std::move(pool);
  Py_RETURN_NONE;
}

PyObject* db_stop(PyObject*, PyObject*) {
  std::shared_ptr<Pool> pool = std::move(g_pool);
  if (pool != nullptr) {
    // A database thread may take the interpreter lock to wake a tasklet.
    Py_BEGIN_ALLOW_THREADS
    pool->stop();
    Py_END_ALLOW_THREADS
  }
  Py_RETURN_NONE;
}

// A tasklet's job: it carries the completer of its wait, so that done() is
// a lambda holding one pointer (std::function keeps it without allocating)
// rather than a copy of the completer (two shared pointers: one allocation
// more per query, freed on the other thread).
struct TaskletJob final : Job {
  std::optional<engine::TypedCompleter<Result>> completer;
};

// Runs one job, parking the calling tasklet: the rows, (affected, insert
// id), the transaction id or None, by `op`.
PyObject* run_job(Op op, const char* sql, Py_ssize_t sql_size, PyObject* const* params, Py_ssize_t param_count,
                  uint64_t tx, double timeout, bool named, bool urgent = false) {
  Pool* raw = pool_or_raise();
  if (raw == nullptr) return nullptr;
  std::shared_ptr<Pool> pool = g_pool;
  auto job = std::make_shared<TaskletJob>();
  job->op = op;
  job->sql.assign(sql, static_cast<size_t>(sql_size));
  job->tx = tx;
  job->column_names = named;
  job->urgent = urgent;
  job->params.resize(static_cast<size_t>(param_count));
  for (Py_ssize_t n = 0; n < param_count; ++n) {
    if (!to_value(params[n], n, job->params[static_cast<size_t>(n)])) return nullptr;
  }
  int64_t deadline_ns = 0;
  if (timeout > 0) {
    deadline_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count() +
                  static_cast<int64_t>(timeout * 1e9);
  }
  auto start = [&](engine::TypedCompleter<Result> done) {
    job->completer.emplace(std::move(done));
    // The pool holds the job until done() returns: the pointer outlives the call.
    job->done = [self = job.get()](Result result) { (*self->completer)(std::move(result)); };
    pool->submit(job);
  };
  // By reference: cancel runs only while this call waits (the wait's
  // registration ends with it), and two references fit std::function's own
  // storage, one allocation less per query.
  engine::CancelFn cancel = [&pool, &job] { pool->abandon(job); };
  engine::Outcome<Result> outcome = engine::await_result<Result>(start, cancel, deadline_ns);
  if (!outcome) return engine::raise_wait_error(outcome.error, "database");
  const Result& result = *outcome.value;
  if (result.error != 0) return raise_error(result);
  switch (job->op) {
    case Op::kQuery: return rows_to_python(result, named);
    case Op::kExecute: return Py_BuildValue("(KK)", static_cast<unsigned long long>(result.affected),
                                            static_cast<unsigned long long>(result.insert_id));
    case Op::kBegin: return PyLong_FromUnsignedLongLong(result.tx);
    case Op::kCommit:
    case Op::kRollback: break;
  }
  Py_RETURN_NONE;
}

// call(op, sql, params, tx, timeout, named[, urgent]): runs one job, parking the tasklet.
PyObject* db_call(PyObject*, PyObject* args) {
  int op = 0;
  const char* sql = nullptr;
  Py_ssize_t sql_size = 0;
  PyObject* params = nullptr;
  unsigned long long tx = 0;
  double timeout = 0;
  int named = 0;
  int urgent = 0;
  if (!PyArg_ParseTuple(args, "is#O!Kdp|p", &op, &sql, &sql_size, &PyTuple_Type, &params, &tx, &timeout, &named,
                        &urgent)) {
    return nullptr;
  }
  if (op < 0 || op > static_cast<int>(Op::kRollback)) {
    PyErr_Format(PyExc_ValueError, "unknown db operation %d", op);
    return nullptr;
  }
  return run_job(static_cast<Op>(op), sql, sql_size, &PyTuple_GET_ITEM(params, 0), PyTuple_GET_SIZE(params), tx, timeout,
                 named != 0, urgent != 0);
}

// query(sql, /, *params, timeout=30.0, named=False, urgent=False): db.query itself, without
// a Python frame, an argument tuple and a keyword dict per call (the
// tasklets' thread does every query's Python work: what it saves per query
// is throughput when that thread gets a small share of a loaded machine).
PyObject* db_query(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  if (nargs < 1 || !PyUnicode_Check(args[0])) {
    PyErr_SetString(PyExc_TypeError, nargs < 1 ? "query() missing required argument 'sql' (pos 1)"
                                               : "query() argument 'sql' must be str");
    return nullptr;
  }
  double timeout = kDefaultTimeoutS;
  bool named = false;
  bool urgent = false;
  const Py_ssize_t keywords = kwnames == nullptr ? 0 : PyTuple_GET_SIZE(kwnames);
  for (Py_ssize_t k = 0; k < keywords; ++k) {
    PyObject* name = PyTuple_GET_ITEM(kwnames, k);
    PyObject* value = args[nargs + k];
    if (PyUnicode_CompareWithASCIIString(name, "timeout") == 0) {
      timeout = PyFloat_AsDouble(value);
      if (timeout == -1 && PyErr_Occurred()) return nullptr;
    } else if (PyUnicode_CompareWithASCIIString(name, "named") == 0) {
      const int truth = PyObject_IsTrue(value);
      if (truth < 0) return nullptr;
      named = truth != 0;
    } else if (PyUnicode_CompareWithASCIIString(name, "urgent") == 0) {
      const int truth = PyObject_IsTrue(value);
      if (truth < 0) return nullptr;
      urgent = truth != 0;
    } else {
      PyErr_Format(PyExc_TypeError, "query() got an unexpected keyword argument '%U'", name);
      return nullptr;
    }
  }
  Py_ssize_t sql_size = 0;
  const char* sql = PyUnicode_AsUTF8AndSize(args[0], &sql_size);
  if (sql == nullptr) return nullptr;
  return run_job(Op::kQuery, sql, sql_size, args + 1, nargs - 1, 0, timeout, named, urgent);
}

// rollback_nowait(tx): ends a transaction without waiting: safe in a tasklet
// being killed, and in a finalizer.
PyObject* db_rollback_nowait(PyObject*, PyObject* arg) {
  unsigned long long tx = PyLong_AsUnsignedLongLong(arg);
  if (tx == static_cast<unsigned long long>(-1) && PyErr_Occurred()) return nullptr;
  if (g_pool != nullptr) {
    auto job = std::make_shared<Job>();
    job->op = Op::kRollback;
    job->tx = tx;
    job->done = [](Result) {};
    g_pool->submit(std::move(job));
  }
  Py_RETURN_NONE;
}

PyObject* db_stats(PyObject*, PyObject*) {
  Pool* pool = pool_or_raise();
  if (pool == nullptr) return nullptr;
  PoolStats s = pool->stats();
  return Py_BuildValue("{s:i,s:i,s:i,s:i,s:n,s:K,s:K,s:K,s:K,s:K,s:d,s:d,s:d}", "size", s.size, "connected", s.connected,
                       "in_use", s.in_use, "transactions", s.transactions, "waiting", static_cast<Py_ssize_t>(s.waiting),
                       "queries", static_cast<unsigned long long>(s.queries), "errors",
                       static_cast<unsigned long long>(s.errors), "disconnects",
                       static_cast<unsigned long long>(s.disconnects), "kills",
                       static_cast<unsigned long long>(s.kills), "latency_count",
                       static_cast<unsigned long long>(s.latency_count), "latency_p50_s", s.latency_p50_ns * 1e-9,
                       "latency_p99_s", s.latency_p99_ns * 1e-9, "latency_max_s", s.latency_max_ns * 1e-9);
}

PyMethodDef kMethods[] = {
    {"start", engine::as_cfunction<db_start>(), METH_VARARGS | METH_KEYWORDS,
     "start(host, port, socket, user, password, database, pool_size, connect_timeout[, ssl_ca, ssl_cert, ssl_key]): start the pool"},
    {"stop", engine::as_cfunction<db_stop>(), METH_NOARGS, "stop(): stop the pool (queued calls fail)"},
    {"call", engine::as_cfunction<db_call>(), METH_VARARGS,
     "call(op, sql, params, tx, timeout, named[, urgent]): run one job; only the calling tasklet waits"},
    {"query", engine::as_cfunction<db_query>(), METH_FASTCALL | METH_KEYWORDS,
     "query($module, sql, /, *params, timeout=30.0, named=False, urgent=False)\n--\n\n"
     "The rows: a list of tuples, or of dicts by column name with named=True. Only the calling tasklet waits. "
     "urgent: queued ahead of the calls waiting for a connection."},
    {"rollback_nowait", engine::as_cfunction<db_rollback_nowait>(), METH_O, "rollback_nowait(tx): queue a rollback"},
    {"stats", engine::as_cfunction<db_stats>(), METH_NOARGS, "stats() -> dict: the pool's statistics"},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef kModule = {PyModuleDef_HEAD_INIT, "_db", "The database pool's native half (see db.py).", -1, kMethods};

PyObject* borrow_attr(const char* module_name, const char* name) {
  PyObject* module = PyImport_ImportModule(module_name);
  if (module == nullptr) return nullptr;
  PyObject* attr = PyObject_GetAttrString(module, name);
  Py_DECREF(module);
  return attr;  // kept for the process's life
}

PyObject* init_module() {
  if (g_decimal == nullptr) {
    g_decimal = borrow_attr("decimal", "Decimal");
    g_datetime = borrow_attr("datetime", "datetime");
    g_date = borrow_attr("datetime", "date");
    g_timedelta = borrow_attr("datetime", "timedelta");
    if (g_decimal == nullptr || g_datetime == nullptr || g_date == nullptr || g_timedelta == nullptr) return nullptr;
  }
  PyObject* module = PyModule_Create(&kModule);
  if (module == nullptr) return nullptr;
  if (g_error == nullptr) {
    g_error = PyErr_NewExceptionWithDoc("_db.Error", "A database error: .code, .sqlstate and .message are the server's",
                                        nullptr, nullptr);
  }
  if (g_error == nullptr || PyModule_AddObjectRef(module, "Error", g_error) < 0 ||
      PyModule_AddIntConstant(module, "POOL_STOPPED", kErrPoolStopped) < 0 ||
      PyModule_AddIntConstant(module, "TRANSACTION_LOST", kErrTransactionLost) < 0 ||
      PyModule_AddObject(module, "DEFAULT_TIMEOUT", PyFloat_FromDouble(kDefaultTimeoutS)) < 0) {
    Py_DECREF(module);
    return nullptr;
  }
  return module;
}

}  // namespace
}  // namespace shard::db

extern "C" PyObject* PyInit__db() { return shard::engine::guarded<shard::db::init_module>(); }
