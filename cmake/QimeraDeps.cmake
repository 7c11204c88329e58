# Third-party libraries. Normally Debian's packages (scripts/install-deps.sh). A machine without
# them (for example a GPU box with only an official LibTorch) can point QIMERA_VENDOR_DIR at a
# folder made by scripts/vendor-deps.sh: the header-only libraries in include/ (fmt and spdlog then
# run header-only) and GoogleTest's sources in googletest/.
set(QIMERA_VENDOR_DIR "" CACHE PATH "Folder from scripts/vendor-deps.sh (instead of system packages)")

if(QIMERA_VENDOR_DIR)
  message(STATUS "Third-party headers from ${QIMERA_VENDOR_DIR}")
  set(vendor_include ${QIMERA_VENDOR_DIR}/include)
  add_library(fmt::fmt INTERFACE IMPORTED)
  set_target_properties(fmt::fmt PROPERTIES INTERFACE_INCLUDE_DIRECTORIES ${vendor_include}
                                            INTERFACE_COMPILE_DEFINITIONS FMT_HEADER_ONLY=1)
  add_library(spdlog::spdlog INTERFACE IMPORTED)
  set_target_properties(spdlog::spdlog PROPERTIES INTERFACE_INCLUDE_DIRECTORIES ${vendor_include}
                                                  INTERFACE_LINK_LIBRARIES fmt::fmt)
  foreach(lib nlohmann_json::nlohmann_json CLI11::CLI11)
    add_library(${lib} INTERFACE IMPORTED)
    set_target_properties(${lib} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES ${vendor_include})
  endforeach()
  if(QIMERA_BUILD_TESTS AND EXISTS ${QIMERA_VENDOR_DIR}/googletest/CMakeLists.txt)
    set(INSTALL_GTEST OFF CACHE BOOL "" FORCE)
    add_subdirectory(${QIMERA_VENDOR_DIR}/googletest ${CMAKE_BINARY_DIR}/googletest EXCLUDE_FROM_ALL)
    if(NOT TARGET GTest::gtest)  # GoogleTest >= 1.11 defines them itself
      add_library(GTest::gtest ALIAS gtest)
      add_library(GTest::gmock ALIAS gmock)
    endif()
    set(QIMERA_HAVE_GTEST ON)
  endif()
else()
  find_package(fmt REQUIRED)
  find_package(spdlog REQUIRED)
  find_package(nlohmann_json 3.9 REQUIRED)
  find_package(CLI11 REQUIRED)
  if(QIMERA_BUILD_TESTS)
    find_package(GTest REQUIRED)
    set(QIMERA_HAVE_GTEST ON)
  endif()
endif()

# xxHash (header-only use): checksums of checkpoints' integrity records.
find_path(QIMERA_XXHASH_INCLUDE_DIR xxhash.h HINTS ${QIMERA_VENDOR_DIR}/include)
if(NOT QIMERA_XXHASH_INCLUDE_DIR)
  message(FATAL_ERROR "xxhash.h not found: install libxxhash-dev (scripts/install-deps.sh)")
endif()
# CRC-32 checks and deflated records in torch.save archives; without it archives are read unchecked.
find_package(ZLIB QUIET)
# Image decoding for ImageNet-style folders; without them the folder loader says so at run time.
find_package(PNG QUIET)
find_package(libjpeg-turbo CONFIG QUIET)

# ONNX export (deploy layer): Debian's libonnx-dev protobuf classes. Optional: without them the
# export command says how to get them.
find_package(Protobuf QUIET)
if(Protobuf_FOUND)
  find_package(ONNX CONFIG QUIET)
endif()
if(TARGET onnx_proto AND TARGET protobuf::libprotobuf)
  set(QIMERA_HAVE_ONNX ON)
  message(STATUS "ONNX export: libonnx ${ONNX_VERSION} (protobuf ${Protobuf_VERSION})")
else()
  set(QIMERA_HAVE_ONNX OFF)
  message(STATUS "ONNX export: disabled (install libonnx-dev)")
endif()
