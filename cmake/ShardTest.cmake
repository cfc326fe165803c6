# One way to add a test, so every test gets the same deadline and labels.
# A test that outlives its deadline fails as a suspected deadlock. A test passes
# only when it exits 0 and its framework printed its success line
# (cmake/run_test.sh): a process that leaves early with status 0 fails.

set(SHARD_TEST_TIMEOUT 120 CACHE STRING "seconds before a test counts as hung")
set(SHARD_RUN_TEST ${CMAKE_CURRENT_LIST_DIR}/run_test.sh)
# GoogleTest's summary when every test passed; unittest's last line.
set(SHARD_GTEST_PASSED "^\\[  PASSED  \\] [0-9]+ tests?\\.$")
set(SHARD_UNITTEST_OK "^OK( \\(.*\\))?$")

# shard_gtest(<name> SOURCES ... LIBS ...): a GoogleTest binary run through ctest.
function(shard_gtest name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gtest_main)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  add_test(NAME ${name} COMMAND ${SHARD_RUN_TEST} ${SHARD_GTEST_PASSED} $<TARGET_FILE:${name}>)
  set_tests_properties(${name} PROPERTIES TIMEOUT ${SHARD_TEST_TIMEOUT} LABELS unit)
endfunction()

# shard_pytest(<file.py>): a Python unittest module run inside the embedded
# interpreter (`shard python -m unittest`), so it sees the real engine.
function(shard_pytest file)
  get_filename_component(stem ${file} NAME_WE)
  get_filename_component(dir ${file} DIRECTORY)
  add_test(NAME py_${stem}
           COMMAND ${SHARD_RUN_TEST} ${SHARD_UNITTEST_OK}
                   $<TARGET_FILE:shard> python -X faulthandler -m unittest -v ${stem}
           WORKING_DIRECTORY ${dir})
  set_tests_properties(py_${stem} PROPERTIES TIMEOUT ${SHARD_TEST_TIMEOUT} LABELS python)
endfunction()

# shard_expect_rejected(<name> <pattern> <command...>): the harness itself is
# tested: <command> exits 0 before its framework reports success, and
# run_test.sh must fail it for that reason.
function(shard_expect_rejected name pattern)
  add_test(NAME ${name} COMMAND ${SHARD_RUN_TEST} ${pattern} ${ARGN})
  set_tests_properties(${name} PROPERTIES TIMEOUT ${SHARD_TEST_TIMEOUT} LABELS harness
                       PASS_REGULAR_EXPRESSION "exited with status 0 but printed no line matching")
endfunction()
