# Writes OUT (a header defining INSTRUCTFLIP_GIT_REVISION) from the git revision
# of SOURCE_DIR, at build time, rewriting it only when the revision changed so
# that only launch/version.cc recompiles. "-dirty": uncommitted changes to
# tracked files; "unknown": not a git checkout (a release tarball).
execute_process(COMMAND git -C ${SOURCE_DIR} rev-parse --short=12 HEAD
                OUTPUT_VARIABLE revision OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE failed)
if(failed OR NOT revision)
  set(revision unknown)
else()
  execute_process(COMMAND git -C ${SOURCE_DIR} status --porcelain --untracked-files=no
                  OUTPUT_VARIABLE changes OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(changes)
    set(revision "${revision}-dirty")
  endif()
endif()
set(text "#define INSTRUCTFLIP_GIT_REVISION \"${revision}\"\n")
if(EXISTS ${OUT})
  file(READ ${OUT} old)
endif()
if(NOT "${old}" STREQUAL "${text}")
  file(WRITE ${OUT} "${text}")
endif()
