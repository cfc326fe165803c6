# The console's tests: real `shard run` nodes serving it on 127.0.0.1, real
# HTTP clients (http.client, a WebSocket by hand, the CLI, Chromium).
shard_pytest(${CMAKE_CURRENT_LIST_DIR}/python/test_console_http.py)
shard_pytest(${CMAKE_CURRENT_LIST_DIR}/python/test_console_auth.py)
shard_pytest(${CMAKE_CURRENT_LIST_DIR}/python/test_console_api.py)
shard_pytest(${CMAKE_CURRENT_LIST_DIR}/python/test_console_cli.py)
shard_pytest(${CMAKE_CURRENT_LIST_DIR}/python/test_console_metrics.py)
shard_pytest(${CMAKE_CURRENT_LIST_DIR}/python/test_console_browser.py)
# The console on a node with a database: accounts with a console_role, the audit table.
shard_db_pytest(${CMAKE_CURRENT_LIST_DIR}/python/test_console_db.py)
