# The database tests run against a real private MariaDB (ops/mariadb.sh) in
# this build tree: a ctest fixture starts it before the first of them and
# stops it after the last, so `ctest` alone (any -R, the sanitizer run's
# build-asan/ too) needs no server set up by hand. They share the server's
# state, and some restart it: they run one at a time (RESOURCE_LOCK).
# A cache variable: shard_db_pytest() is called from other folders too (server/).
set(SHARD_DB_TEST_DIR ${CMAKE_BINARY_DIR}/mariadb CACHE INTERNAL "the private MariaDB of the tests")
add_test(NAME db_server_start COMMAND bash ${PROJECT_SOURCE_DIR}/ops/mariadb.sh start ${SHARD_DB_TEST_DIR})
set_tests_properties(db_server_start PROPERTIES FIXTURES_SETUP mariadb TIMEOUT 120 LABELS db)
add_test(NAME db_server_stop COMMAND bash ${PROJECT_SOURCE_DIR}/ops/mariadb.sh stop ${SHARD_DB_TEST_DIR})
set_tests_properties(db_server_stop PROPERTIES FIXTURES_CLEANUP mariadb TIMEOUT 120 LABELS db)

# shard_db_pytest(<file.py>): shard_pytest, with the engine's support.py
# importable and the server's client settings in SHARD_DB_TEST_DIR.
function(shard_db_pytest file)
  shard_pytest(${file})
  get_filename_component(stem ${file} NAME_WE)
  set_tests_properties(py_${stem} PROPERTIES LABELS "python;db" FIXTURES_REQUIRED mariadb RESOURCE_LOCK mariadb
                       ENVIRONMENT "PYTHONPATH=${PROJECT_SOURCE_DIR}/engine/tests/python;SHARD_DB_TEST_DIR=${SHARD_DB_TEST_DIR};SHARD_MARIADB_SH=${PROJECT_SOURCE_DIR}/ops/mariadb.sh")
endfunction()

shard_gtest(db_pool_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/pool_test.cpp LIBS shard_db)
set_tests_properties(db_pool_test PROPERTIES LABELS "unit;db" FIXTURES_REQUIRED mariadb RESOURCE_LOCK mariadb
                     ENVIRONMENT "SHARD_DB_TEST_DIR=${SHARD_DB_TEST_DIR}")
shard_db_pytest(${CMAKE_CURRENT_LIST_DIR}/python/test_db.py)
shard_db_pytest(${CMAKE_CURRENT_LIST_DIR}/python/test_db_pool.py)
shard_db_pytest(${CMAKE_CURRENT_LIST_DIR}/python/test_migrate.py)
shard_db_pytest(${CMAKE_CURRENT_LIST_DIR}/python/test_live_settings.py)
shard_db_pytest(${CMAKE_CURRENT_LIST_DIR}/python/test_node_start.py)
shard_db_pytest(${CMAKE_CURRENT_LIST_DIR}/python/test_tls.py)
