#!/usr/bin/env bash
# Checks what `make setup` cannot install by itself: Python 3.11+, a JDK 17+ and Maven 3.8+.
# Prints one line per missing piece, saying what to install, and exits non-zero.
set -u
python=${PYTHON:-python3}
missing=0
say() { echo "error: $*" >&2; missing=1; }

if ! command -v "$python" >/dev/null 2>&1; then
  say "Python 3.11 or newer is required and '$python' was not found: sudo apt-get install python3 python3-venv"
elif ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  say "Python 3.11 or newer is required ('$python' is $("$python" -c 'import platform; print(platform.python_version())')): install a newer python3"
elif ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  say "Python's venv module is missing: sudo apt-get install python3-venv"
fi

java=java
[ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ] && java="$JAVA_HOME/bin/java"
if ! command -v "$java" >/dev/null 2>&1; then
  say "a JDK 17 or newer is required and java was not found: sudo apt-get install openjdk-17-jdk-headless"
else
  spec=$("$java" -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2}')
  major=${spec%%.*}
  if ! [ "${major:-0}" -ge 17 ] 2>/dev/null; then
    say "a JDK 17 or newer is required ($java is version ${spec:-unknown}): sudo apt-get install openjdk-17-jdk-headless, or set JAVA_HOME"
  fi
fi

if ! command -v mvn >/dev/null 2>&1; then
  say "Maven 3.8 or newer is required and mvn was not found: sudo apt-get install maven"
else
  version=$(mvn -v 2>/dev/null | sed -n 's/.*Apache Maven \([0-9][0-9.]*\).*/\1/p' | head -1)
  IFS=. read -r mvn_major mvn_minor _ <<<"${version:-0.0}"
  if [ "${mvn_major:-0}" -lt 3 ] || { [ "${mvn_major:-0}" -eq 3 ] && [ "${mvn_minor:-0}" -lt 8 ]; }; then
    say "Maven 3.8 or newer is required (found ${version:-unknown}): sudo apt-get install maven"
  fi
fi

exit $missing
