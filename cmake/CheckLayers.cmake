# Refuses an include that goes up a layer: a file of src/<layer>/ or include/ecu2mqtt/<layer>/ may
# include "ecu2mqtt/<other>/..." only when <other> comes before <layer> in LAYERS (or is <layer>).
#   cmake -DROOT=<source dir> "-DLAYERS=protocol;core;..." -P CheckLayers.cmake
if(NOT ROOT OR NOT LAYERS)
  message(FATAL_ERROR "CheckLayers: give -DROOT=<source dir> and -DLAYERS=<bottom;...;top>")
endif()

set(violations "")
foreach(layer ${LAYERS})
  list(FIND LAYERS ${layer} rank)
  file(GLOB_RECURSE files ${ROOT}/src/${layer}/*.cpp ${ROOT}/src/${layer}/*.hpp
    ${ROOT}/include/ecu2mqtt/${layer}/*.hpp)
  foreach(file ${files})
    file(STRINGS ${file} includes REGEX "^[ \t]*#[ \t]*include[ \t]*\"ecu2mqtt/[a-z_]+/")
    foreach(line ${includes})
      string(REGEX MATCH "ecu2mqtt/([a-z_]+)/[^\"]*" target "${line}")
      set(other ${CMAKE_MATCH_1})
      list(FIND LAYERS ${other} other_rank)
      if(other_rank EQUAL -1 OR other_rank GREATER rank)
        file(RELATIVE_PATH where ${ROOT} ${file})
        string(APPEND violations "  ${where} (${layer}) includes ${target} (${other})\n")
      endif()
    endforeach()
  endforeach()
endforeach()

if(violations)
  message(FATAL_ERROR "An include goes up a layer (order from the bottom: ${LAYERS}):\n"
    "${violations}Move the shared part down (often into core/) instead.")
endif()
