# Refuses an include that goes up a layer: a file of src/<layer>/ or include/ecu2mqtt/<layer>/ may
# include "ecu2mqtt/<other>/..." only when <other> comes before <layer> in LAYERS (or is <layer>).
# BANS lists pairs "<layer>:<other>" where <layer> may not include <other> even though <other> is
# below it; EXCEPTIONS lists files (relative to ROOT) that such a ban lets pass for now.
#   cmake -DROOT=<source dir> "-DLAYERS=protocol;core;..." "-DBANS=mqtt:ledger" -P CheckLayers.cmake
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
      file(RELATIVE_PATH where ${ROOT} ${file})
      list(FIND BANS "${layer}:${other}" ban)
      list(FIND EXCEPTIONS "${where}" excepted)
      if(other_rank EQUAL -1 OR other_rank GREATER rank)
        string(APPEND violations "  ${where} (${layer}) includes ${target} (${other})\n")
      elseif(NOT ban EQUAL -1 AND excepted EQUAL -1)
        string(APPEND violations "  ${where} (${layer}) includes ${target} (${other}: banned)\n")
      endif()
    endforeach()
  endforeach()
endforeach()

if(violations)
  message(FATAL_ERROR "An include goes up a layer (order from the bottom: ${LAYERS}) "
    "or is banned (${BANS}):\n"
    "${violations}Move the shared part down (often into core/) instead.")
endif()
