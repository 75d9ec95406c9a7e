# Writes HEADER: the text of SOURCE as `inline constexpr const char NAME[]`, a raw string
# literal. Run at build time (cmake -P), so that editing SOURCE rebuilds what includes HEADER.
file(READ "${SOURCE}" text)
set(delimiter "ecu2mqtt_text")
string(FIND "${text}" ")${delimiter}\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${SOURCE} contains the raw string's end, )${delimiter}\"")
endif()
file(WRITE "${HEADER}.tmp"
  "// Generated at build time from ${SOURCE}: edit that file.\n#pragma once\n\nnamespace ecu2mqtt {\n"
  "inline constexpr const char ${NAME}[] = R\"${delimiter}(${text})${delimiter}\";\n}\n")
configure_file("${HEADER}.tmp" "${HEADER}" COPYONLY)
file(REMOVE "${HEADER}.tmp")
