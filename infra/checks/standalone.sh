#!/usr/bin/env bash
# The repository stands alone: a user clones it and nothing else. Fails, naming each file
# and line, if a tracked file refers to the team folder beside the repository or to an
# absolute path of a machine (home or work directories). Run by `make test`, which also
# runs it on a scratch repository holding such a reference to prove that it fails.
# Usage: standalone.sh [REPO_DIR]
set -euo pipefail
cd "${1:-$(dirname "$0")/../..}"
# Built from pieces so that this script does not match itself.
dotdot='\.\.'
pattern="${dotdot}/shared/|/wo""rk/|/ro""ot/|/ho""me/[a-z]"
if hits=$(git grep -n -I -E "$pattern" -- . ':!Cargo.lock' 2>/dev/null); then
  echo "standalone: these files refer to paths outside the repository; copy what they need into it:" >&2
  echo "$hits" >&2
  exit 1
fi
echo "standalone: no file refers to a path outside the repository"
