# One way to add a test, so every test gets the same deadline and labels.
# A test that outlives its deadline fails as a suspected deadlock.

set(SHARD_TEST_TIMEOUT 120 CACHE STRING "seconds before a test counts as hung")

# shard_gtest(<name> SOURCES ... LIBS ...): a GoogleTest binary run through ctest.
function(shard_gtest name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gtest_main)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES TIMEOUT ${SHARD_TEST_TIMEOUT} LABELS unit)
endfunction()

# shard_pytest(<file.py>): a Python unittest module run inside the embedded
# interpreter (`shard python -m unittest`), so it sees the real engine.
function(shard_pytest file)
  get_filename_component(stem ${file} NAME_WE)
  get_filename_component(dir ${file} DIRECTORY)
  add_test(NAME py_${stem}
           COMMAND $<TARGET_FILE:shard> python -X faulthandler -m unittest -v ${stem}
           WORKING_DIRECTORY ${dir})
  set_tests_properties(py_${stem} PROPERTIES TIMEOUT ${SHARD_TEST_TIMEOUT} LABELS python)
endfunction()
