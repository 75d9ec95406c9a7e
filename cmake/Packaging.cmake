# Install rules and the Debian package (cpack -G DEB): the service and the simulator, a
# hardened systemd unit, the commented settings in /etc/ecu2mqtt/, man pages and the copyright.
# Its version is project()'s, like everything else that carries one.
include(GNUInstallDirs)

install(TARGETS ecu2mqtt ecu2mqtt-sim RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# Debian keeps units in /lib/systemd/system and settings in /etc whatever the prefix.
install(FILES packaging/ecu2mqtt.service DESTINATION /lib/systemd/system)
# Readable by root alone: it may hold the broker password (systemd reads it as root).
install(FILES packaging/ecu2mqtt.env DESTINATION /etc/ecu2mqtt PERMISSIONS OWNER_READ OWNER_WRITE)

set(ECU2MQTT_DOC_DIR ${CMAKE_INSTALL_DATADIR}/doc/ecu2mqtt)
install(FILES packaging/copyright DESTINATION ${ECU2MQTT_DOC_DIR})
install(FILES packaging/lintian-overrides DESTINATION ${CMAKE_INSTALL_DATADIR}/lintian/overrides
  RENAME ecu2mqtt)

# Compressed the Debian way (gzip -9n: no name or time stamp inside, so rebuilds are identical).
find_program(GZIP gzip REQUIRED)
set(packaging_dir ${PROJECT_BINARY_DIR}/packaging)
add_custom_command(OUTPUT ${packaging_dir}/changelog.gz
  COMMAND ${CMAKE_COMMAND} -E make_directory ${packaging_dir}
  COMMAND ${GZIP} -9n -c ${PROJECT_SOURCE_DIR}/ha-addon/CHANGELOG.md > ${packaging_dir}/changelog.gz
  DEPENDS ${PROJECT_SOURCE_DIR}/ha-addon/CHANGELOG.md VERBATIM)
set(package_docs ${packaging_dir}/changelog.gz)
install(FILES ${packaging_dir}/changelog.gz DESTINATION ${ECU2MQTT_DOC_DIR})

# Man pages from the programs' own --help, so they cannot drift from it. help2man is only
# needed to package; without it the service still builds and installs.
find_program(HELP2MAN help2man)
if(HELP2MAN)
  set(manpages)
  foreach(program ecu2mqtt ecu2mqtt-sim)
    if(program STREQUAL "ecu2mqtt")
      set(summary "APsystems ECU data to MQTT, in place of the EMA cloud")
    else()
      set(summary "emulate APsystems ECUs uploading to ecu2mqtt")
    endif()
    add_custom_command(OUTPUT ${packaging_dir}/${program}.1.gz
      COMMAND ${CMAKE_COMMAND} -E make_directory ${packaging_dir}
      COMMAND ${HELP2MAN} --no-info --no-discard-stderr --section=1 --name=${summary}
        --version-string=${PROJECT_VERSION} --output=${packaging_dir}/${program}.1
        $<TARGET_FILE:${program}>
      COMMAND ${GZIP} -9nf ${packaging_dir}/${program}.1
      DEPENDS ${program} VERBATIM)
    list(APPEND manpages ${packaging_dir}/${program}.1.gz)
  endforeach()
  install(FILES ${manpages} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
  list(APPEND package_docs ${manpages})
else()
  message(STATUS "help2man not found: no man pages (scripts/install-deps.sh test installs it)")
endif()
# Built by `cmake --build` (everything), not by the run command's single target.
add_custom_target(package_docs ALL DEPENDS ${package_docs})

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME ecu2mqtt)
set(CPACK_PACKAGE_VENDOR "ecu2mqtt")
set(CPACK_PACKAGE_CONTACT "ecu2mqtt maintainers <maintainers@ecu2mqtt.invalid>" CACHE STRING
  "Maintainer field of the Debian package")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "APsystems ECU data to MQTT without the EMA cloud")
# The summary is the description's first line; these lines follow it (at most 80 columns).
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "ecu2mqtt answers an APsystems ECU (ECU-R, ECU-R Pro, ECU-B, ECU-C) in
place of the EMA cloud, decodes every upload (power, energy, and per inverter
temperature, grid frequency and DC channel values) and publishes it over MQTT
with Home Assistant discovery. Readings are kept on disk until the broker has
them. The package also holds ecu2mqtt-sim, which emulates ECUs.")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://github.com/ecu2mqtt/ecu2mqtt")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# Not a library: the zone files that give a polled ECU's day by its own time zone.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "tzdata")
# The settings stay as the admin edited them across upgrades.
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${PROJECT_SOURCE_DIR}/packaging/conffiles
  ${PROJECT_SOURCE_DIR}/packaging/postinst
  ${PROJECT_SOURCE_DIR}/packaging/prerm
  ${PROJECT_SOURCE_DIR}/packaging/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_BINARY_DIR}/package)
include(CPack)
