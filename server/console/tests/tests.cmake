# The console's tests: real `shard run` nodes serving it on 127.0.0.1, real
# HTTP clients (http.client, a WebSocket by hand, the CLI, Chromium).
shard_pytest(${CMAKE_CURRENT_LIST_DIR}/python/test_console_http.py)
shard_pytest(${CMAKE_CURRENT_LIST_DIR}/python/test_console_auth.py)
shard_pytest(${CMAKE_CURRENT_LIST_DIR}/python/test_console_api.py)
shard_pytest(${CMAKE_CURRENT_LIST_DIR}/python/test_console_cli.py)
shard_pytest(${CMAKE_CURRENT_LIST_DIR}/python/test_console_metrics.py)
shard_pytest(${CMAKE_CURRENT_LIST_DIR}/python/test_console_browser.py)
shard_pytest(${CMAKE_CURRENT_LIST_DIR}/python/test_console_tls.py)
# The console on a node with a database: accounts with a console_role, the audit table.
shard_db_pytest(${CMAKE_CURRENT_LIST_DIR}/python/test_console_db.py)
# Real sol and proxy nodes: consoles in the directory, shared sessions, a change for every node of a role.
shard_db_pytest(${CMAKE_CURRENT_LIST_DIR}/python/test_console_cluster.py)
set_tests_properties(py_test_console_cluster PROPERTIES TIMEOUT 300)
