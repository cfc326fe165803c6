shard_pytest(${CMAKE_CURRENT_LIST_DIR}/test_module_api.py)
shard_pytest(${CMAKE_CURRENT_LIST_DIR}/test_tasklet.py)
shard_pytest(${CMAKE_CURRENT_LIST_DIR}/test_channel.py)
shard_pytest(${CMAKE_CURRENT_LIST_DIR}/test_kill.py)
shard_pytest(${CMAKE_CURRENT_LIST_DIR}/test_run.py)
shard_pytest(${CMAKE_CURRENT_LIST_DIR}/test_threads.py)
shard_pytest(${CMAKE_CURRENT_LIST_DIR}/test_recursion.py)
shard_pytest(${CMAKE_CURRENT_LIST_DIR}/test_stack_overflow.py)
shard_pytest(${CMAKE_CURRENT_LIST_DIR}/test_interpreter_state.py)
shard_pytest(${CMAKE_CURRENT_LIST_DIR}/test_scale.py)
shard_pytest(${CMAKE_CURRENT_LIST_DIR}/test_cli.py)
shard_pytest(${CMAKE_CURRENT_LIST_DIR}/test_uthread.py)
shard_pytest(${CMAKE_CURRENT_LIST_DIR}/test_gameloop.py)
shard_pytest(${CMAKE_CURRENT_LIST_DIR}/test_dispatch.py)

# The harness fails a unittest run that exits 0 before its final "OK".
shard_expect_rejected(harness_rejects_early_exit_unittest ${SHARD_UNITTEST_OK}
                      $<TARGET_FILE:shard> python -m unittest -v exits_early)
set_tests_properties(harness_rejects_early_exit_unittest PROPERTIES WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR})
