# `make help`: the targets of the Makefile and their `## description`, within 120 columns.
# Colour only on a terminal and never with NO_COLOR (colour=1 is passed in by the Makefile).
BEGIN {
  FS = ":.*## "
  width = 120
  print "Usage: make TARGET [APP=key] [DRY_RUN=1] [YES=1] [VERBOSE=1] [ENV_DIR=dir] [IMAGE=ref] [VERSION=n]"
  print "                   [NAME=migration] [REASON=text] [DB=1] [DB_KIND=flypg|mpg] [JSON=1]"
  print ""
}
/^[a-zA-Z0-9_-]+:.*## / {
  name = sprintf("  %-28s ", $1)
  if (colour) printf "  \033[36m%-28s\033[0m ", $1; else printf "%s", name
  # The description wraps at word boundaries under its own column.
  n = split($2, words, " ")
  line = ""
  room = width - length(name)
  for (i = 1; i <= n; i++) {
    if (line != "" && length(line) + 1 + length(words[i]) > room) {
      print line
      printf "%" length(name) "s", ""
      line = words[i]
    } else line = line == "" ? words[i] : line " " words[i]
  }
  print line
}
