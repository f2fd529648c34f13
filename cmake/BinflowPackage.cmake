# Install rules and the exported package: find_package(binflow) then link
# binflow::framework (tests/e2e builds examples/ against the install tree).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS binflow_framework EXPORT binflowTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/framework/include/binflow
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS binflow RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(EXPORT binflowTargets NAMESPACE binflow:: FILE binflowTargets.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/binflow)
get_target_property(binflow_framework_type binflow_framework TYPE)
if(binflow_framework_type STREQUAL "STATIC_LIBRARY")
  set(BINFLOW_FRAMEWORK_STATIC ON)
else()
  set(BINFLOW_FRAMEWORK_STATIC OFF)
endif()
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/binflowConfig.cmake.in
  ${PROJECT_BINARY_DIR}/binflowConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/binflow)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/binflowConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/binflowConfig.cmake ${PROJECT_BINARY_DIR}/binflowConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/binflow)
