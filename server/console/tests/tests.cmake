# The console's tests: real `_console` servers, real HTTP clients (http.client,
# a WebSocket handshake by hand), real node processes for the CLI and the browser.
shard_pytest(${CMAKE_CURRENT_LIST_DIR}/python/test_http_server.py)
