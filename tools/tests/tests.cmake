# tools/: the game client (tools/client) against real nodes on the private
# MariaDB (the `mariadb` fixture of db/tests/tests.cmake), and without one
# against hostile servers.
shard_db_pytest(${CMAKE_CURRENT_LIST_DIR}/test_game_client.py)
set_tests_properties(py_test_game_client PROPERTIES TIMEOUT 400)
shard_pytest(${CMAKE_CURRENT_LIST_DIR}/test_game_client_hostile.py)
shard_pytest(${CMAKE_CURRENT_LIST_DIR}/test_swarm_stats.py)
# The client's protoc-generated modules come from this build tree: its default,
# build/netproto/python, is the normal tree's, which a sanitizer run alone
# (ops/sanitize.sh in a fresh checkout) does not have.
foreach(test py_test_game_client py_test_game_client_hostile)
  set_property(TEST ${test} APPEND PROPERTY ENVIRONMENT "SHARD_PROTOS=${CMAKE_BINARY_DIR}/netproto/python")
endforeach()
