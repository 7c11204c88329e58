# One static library per architectural layer (src/qimera/<layer>), so that a layer can only use the
# layers it names: the dependency direction of the folders is enforced by the linker, not by habit.
#
#   qimera_layer(<layer> [DEPS <layer>...] [LIBS <imported targets>...] [DEFS <private definitions>...])
#
# Sources are the layer folder's *.cpp files; all layers share one precompiled LibTorch header.
function(qimera_layer layer)
  cmake_parse_arguments(ARG "" "" "DEPS;LIBS;DEFS" ${ARGN})
  file(GLOB sources CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/qimera/${layer}/*.cpp)
  set(target qimera_${layer})
  if(NOT sources)  # A layer still being written: headers only.
    add_library(${target} INTERFACE)
    target_include_directories(${target} INTERFACE ${PROJECT_SOURCE_DIR}/src)
    target_link_libraries(${target} INTERFACE fmt::fmt spdlog::spdlog nlohmann_json::nlohmann_json
                                              ${TORCH_LIBRARIES})
    foreach(dep IN LISTS ARG_DEPS)
      target_link_libraries(${target} INTERFACE qimera_${dep})
    endforeach()
    return()
  endif()
  add_library(${target} STATIC ${sources})
  target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  # fmt first: official LibTorch 2.x ships newer fmt headers that must not shadow ours.
  target_link_libraries(${target} PUBLIC fmt::fmt spdlog::spdlog nlohmann_json::nlohmann_json
                                          ${TORCH_LIBRARIES})
  foreach(dep IN LISTS ARG_DEPS)
    target_link_libraries(${target} PUBLIC qimera_${dep})
  endforeach()
  if(ARG_LIBS)
    target_link_libraries(${target} PRIVATE ${ARG_LIBS})
  endif()
  if(ARG_DEFS)
    target_compile_definitions(${target} PRIVATE ${ARG_DEFS})
  endif()
  qimera_use_pch(${target})
endfunction()

# Reuses the one precompiled header (src/qimera/pch.h) built by qimera_pch.
function(qimera_use_pch target)
  if(QIMERA_USE_PCH)
    target_precompile_headers(${target} REUSE_FROM qimera_pch)
  endif()
endfunction()

# Executables list libstdc++ before LibTorch among their shared libraries. Official LibTorch 2.x
# wheels (seen with 2.11) export a partial copy of some std::filesystem functions from libtorch.so;
# the dynamic linker binds the first definition it finds, and the copy of remove_all crashed (a
# call through a null pointer). With libstdc++ first, the executable binds libstdc++'s own.
# Call before linking anything else.
function(qimera_libstdcxx_first target)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND NOT APPLE)
    target_link_libraries(${target} PRIVATE "-Wl,--push-state,--no-as-needed" stdc++ "-Wl,--pop-state")
  endif()
endfunction()
