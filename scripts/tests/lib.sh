# Sourced by the tests of the project's shell scripts (scripts/tests/*.sh): the checkout
# ($repo), a temporary folder removed on exit ($tmp), a folder holding only the real tools a
# test lets the script under test use ($tools), and one PASS/FAIL line per case ($failed is 1
# once a case failed).
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/$(basename "$0" .sh)-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
tools="$tmp/tools"
failed=0

# allow_tools TOOL...: links these real tools into $tools.
allow_tools() {
    mkdir -p "$tools"
    local t
    for t; do ln -s "$(command -v "$t")" "$tools/$t"; done
}

# verdict NAME STDERR_FILE: PASS when $problem is empty and STDERR_FILE holds $want_err (when
# set); else FAIL with the problem and that stderr.
verdict() {
    if [[ -n ${want_err:-} ]] && ! grep -qF -- "$want_err" "$2"; then problem="${problem:+$problem; }stderr lacks '$want_err'"; fi
    if [[ -z $problem ]]; then
        echo "PASS $1"
    else
        echo "FAIL $1: $problem"
        sed 's/^/    stderr: /' "$2"
        failed=1
    fi
}

# same_calls WHAT GOT WANT: adds to $problem when the recorded calls differ, one per line.
same_calls() {
    [[ $2 == "$3" ]] || problem="${problem:+$problem; }$1 calls '${2//$'\n'/ | }', want '${3//$'\n'/ | }'"
}
