# Build helpers shared by every CMakeLists.txt of the project.

# creneau_protobuf(<target> <proto files...>): runs protoc-c at build time
# and makes a static library of the generated code. Include paths are
# "creneau/v1/<name>.pb-c.h".
function(creneau_protobuf target)
  set(out_dir ${CMAKE_BINARY_DIR}/proto)
  set(sources)
  foreach(proto ${ARGN})
    get_filename_component(name ${proto} NAME_WE)
    set(c ${out_dir}/creneau/v1/${name}.pb-c.c)
    set(h ${out_dir}/creneau/v1/${name}.pb-c.h)
    add_custom_command(
      OUTPUT ${c} ${h}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${out_dir}
      COMMAND ${PROTOC_C} --proto_path=${PROJECT_SOURCE_DIR}/proto
              --c_out=${out_dir} ${proto}
      DEPENDS ${proto}
      COMMENT "protoc-c ${name}.proto")
    list(APPEND sources ${c})
  endforeach()
  add_library(${target} STATIC ${sources})
  target_include_directories(${target} PUBLIC ${out_dir})
  target_link_libraries(${target} PUBLIC PkgConfig::PROTOBUFC)
  # Generated code is not ours to lint.
  target_compile_options(${target} PRIVATE -w)
endfunction()

# creneau_migrations(<target> <dir> <symbol>): embeds <dir>/NNN_*.sql into
# the target as `const struct db_migration <symbol>[]` and
# `const size_t <symbol>_count`, sorted by name, so a daemon carries its
# schema and needs no path at run time.
function(creneau_migrations target dir symbol)
  file(GLOB sql CONFIGURE_DEPENDS ${dir}/[0-9][0-9][0-9]_*.sql)
  list(SORT sql)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/${symbol}.c)
  # The script globs the directory itself: a list in -D would be split at
  # its semicolons by the shell.
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DOUT=${out} -DSYMBOL=${symbol}
            -DDIR=${dir} -P ${PROJECT_SOURCE_DIR}/cmake/embed_sql.cmake
    DEPENDS ${sql} ${PROJECT_SOURCE_DIR}/cmake/embed_sql.cmake
    COMMENT "embedding migrations of ${symbol}")
  target_sources(${target} PRIVATE ${out})
endfunction()

# creneau_daemon(<name> <sources...>): a daemon linked with libcreneau and
# its embedded migrations (services/<name>/migrations).
function(creneau_daemon name)
  add_executable(${name} ${ARGN})
  target_link_libraries(${name} PRIVATE creneau)
  string(REPLACE "-" "_" sym ${name})
  creneau_migrations(${name} ${CMAKE_CURRENT_SOURCE_DIR}/migrations
                     ${sym}_migrations)
  set_target_properties(${name} PROPERTIES
    RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)
endfunction()
