# The ops scripts' tests. test_run_sh runs ops/run.sh --no-setup on this build
# tree: a MariaDB of its own (not the tests' fixture), but one at a time with
# the database tests (RESOURCE_LOCK): two servers and five nodes at once is
# more than this 2-core machine answers in time.
shard_pytest(${CMAKE_CURRENT_LIST_DIR}/test_run_sh.py)
set_tests_properties(py_test_run_sh PROPERTIES LABELS "python;ops" TIMEOUT 400 RESOURCE_LOCK mariadb
                     ENVIRONMENT "PYTHONPATH=${PROJECT_SOURCE_DIR}/engine/tests/python")
# The systemd units: systemd-analyze verify (skipped without it), and their command lines.
shard_pytest(${CMAKE_CURRENT_LIST_DIR}/test_systemd_units.py)
set_tests_properties(py_test_systemd_units PROPERTIES LABELS "python;ops")
# ops/demo/load.py twice on a database of its own; the schema's fitness for Galera.
shard_db_pytest(${CMAKE_CURRENT_LIST_DIR}/test_demo_load.py)
shard_db_pytest(${CMAKE_CURRENT_LIST_DIR}/test_galera_schema.py)
