# The native kit: sources shared by every lmdrive engine library (the
# reference engine and the SDK shims). Each library compiles them into itself
# (with its own C++ ABI flag and hidden visibility), so no std:: types cross
# between separately built objects.
#
#   include(<this file>)
#   add_library(x SHARED shim.cc ${LMDRIVE_SHIMCOMMON_SOURCES})
#   target_include_directories(x PRIVATE ${LMDRIVE_SHIMCOMMON_INCLUDE_DIRS})
get_filename_component(LMDRIVE_SHIMCOMMON_DIR "${CMAKE_CURRENT_LIST_DIR}" ABSOLUTE)
set(LMDRIVE_SHIMCOMMON_SOURCES
  ${LMDRIVE_SHIMCOMMON_DIR}/src/api.cc
  ${LMDRIVE_SHIMCOMMON_DIR}/src/config.cc
  ${LMDRIVE_SHIMCOMMON_DIR}/src/json.cc
  ${LMDRIVE_SHIMCOMMON_DIR}/src/request.cc
  ${LMDRIVE_SHIMCOMMON_DIR}/src/util.cc)
set(LMDRIVE_SHIMCOMMON_INCLUDE_DIRS
  ${LMDRIVE_SHIMCOMMON_DIR}/include
  ${LMDRIVE_SHIMCOMMON_DIR}/../include)
