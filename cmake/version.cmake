# Writes the version source (OUTPUT, from INPUT) with the git commit of SOURCE_DIR at build time,
# so that a binary never reports the commit it was configured at. configure_file leaves the file
# untouched when nothing changed, so an unchanged commit rebuilds nothing.
execute_process(COMMAND git describe --always --dirty
  WORKING_DIRECTORY ${SOURCE_DIR} OUTPUT_VARIABLE DDCSR_GIT_DESCRIBE
  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT DDCSR_GIT_DESCRIBE)
  set(DDCSR_GIT_DESCRIBE "unknown")
endif()
configure_file(${INPUT} ${OUTPUT} @ONLY)
