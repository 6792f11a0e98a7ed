#!/usr/bin/env bash
# Runs every test of the project's shell scripts (scripts/tests/*.sh but this one and lib.sh, which they share): fakes only,
# nothing installed, a few seconds. Prints each case's PASS/FAIL line; exits 1 when any failed.
# (scripts/fresh-machine-check.sh, the slow end-to-end check of the README's first command, is
# not among them.)
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
failed=()
for t in "$here"/*.sh; do
    [[ $t == "${BASH_SOURCE[0]}" || $(basename "$t") == all.sh || $(basename "$t") == lib.sh ]] && continue
    echo "== scripts/tests/$(basename "$t")"
    "$t" || failed+=("$(basename "$t")")
done
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "scripts/tests: failed: ${failed[*]}" >&2
    exit 1
fi
