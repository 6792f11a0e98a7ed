#!/usr/bin/env bash
# Tests how models/scripts/make-coreml-fixtures.sh gets itself a Python that can make its
# coremltools virtual environment, with fakes and nothing installed: a fake `python3` that, like
# Debian's, cannot `import ensurepip` until python3.11-venv is "installed", and whose
# `-m venv [--clear] DIR` behaves as the real one does on a folder left by an earlier run (without
# --clear it keeps DIR/bin/python, even a dangling link, then fails running it); the venv's
# fake python "installs" the pins and "generates" the fixtures. A fake `apt-get` records its calls
# and "installs" python3 / python3.11-venv unless $FAKE_APT_NOOP. PATH holds only those and the
# tools the scripts use. Prints one PASS/FAIL line per case; exits 1 when any failed.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

allow_tools bash env cat mkdir rm mv cp dirname grep id ln touch
fakes="$tmp/fakes"
mkdir -p "$fakes"

# The system's fake python3 ($FAKE_STATE/venv-package: python3.11-venv is installed).
cat >"$fakes/python3.fake" <<'EOF'
#!/usr/bin/env bash
set -eu
if [[ $1 == -c ]]; then
    case $2 in
        *"import ensurepip, venv"*) [[ -f $FAKE_STATE/venv-package ]] || { echo "ModuleNotFoundError: No module named 'ensurepip'" >&2; exit 1; } ;;
        *version_info*) echo python3.11-venv ;;
        *) echo "fake python3: unexpected -c $2" >&2; exit 2 ;;
    esac
    exit 0
fi
if [[ $1 == -m && $2 == venv ]]; then
    [[ $3 == --clear ]] && { clear=1; dir=$4; } || { clear=0; dir=$3; }
    [[ $clear == 0 ]] || rm -rf "$dir"
    mkdir -p "$dir/bin"
    [[ -L $dir/bin/python || -e $dir/bin/python ]] || cp "$FAKE_VENV_PYTHON" "$dir/bin/python"
    [[ -f $FAKE_STATE/venv-package ]] || { echo "The virtual environment was not created successfully because ensurepip is not available." >&2; exit 1; }
    "$dir/bin/python" -m ensurepip # fails on a dangling interpreter, as the real one does
    exit 0
fi
echo "fake python3: unexpected $*" >&2
exit 2
EOF
# The venv's fake python: coremltools importable once "installed"; the .py makes a fixture.
cat >"$fakes/venv-python.fake" <<'EOF'
#!/usr/bin/env bash
set -eu
venv="$(dirname "$0")/.."
case $1 in
    -c) [[ -f $venv/coremltools ]] ;;
    -m) [[ $2 == ensurepip ]] && exit 0
        echo "$*" >>"$FAKE_PIP_LOG"; touch "$venv/coremltools" ;;
    *.py) mkdir -p "$2"; touch "$2/plain.mlpackage" ;;
esac
EOF
cat >"$fakes/apt-get" <<'EOF'
#!/usr/bin/env bash
set -eu
echo "$*" >>"$FAKE_APT_LOG"
[[ $1 == install && -z ${FAKE_APT_NOOP:-} ]] || exit 0
for p in "${@:4}"; do
    case $p in
        python3) cp "$FAKE_PYTHON" "$FAKE_BIN/python3" ;;
        python3.11-venv) touch "$FAKE_STATE/venv-package" ;;
    esac
done
EOF
printf '#!/usr/bin/env bash\nexec "$@"\n' >"$fakes/sudo"
chmod +x "$fakes"/*

n=0
# case_ NAME WANT_RC WANT_APT [VAR=VALUE...]: runs the script with HOME=a fresh folder; $setup
# (a function, with $home, $bin and $state set) prepares it. A pass of 0 must print the fixtures'
# folder last and have made them.
case_() {
    local name=$1 want_rc=$2 want_apt=$3 rc=0 problem="" apt
    shift 3
    n=$((n + 1))
    home="$tmp/home$n" bin="$tmp/bin$n" state="$tmp/state$n"
    mkdir -p "$home" "$bin" "$state"
    cp "$fakes/python3.fake" "$bin/python3"
    ${setup:-true}
    : >"$tmp/apt.log"
    : >"$tmp/pip.log"
    env -i PATH="$bin:$fakes:$tools" HOME="$home" FAKE_STATE="$state" FAKE_BIN="$bin" FAKE_APT_LOG="$tmp/apt.log" \
        FAKE_PIP_LOG="$tmp/pip.log" FAKE_PYTHON="$fakes/python3.fake" FAKE_VENV_PYTHON="$fakes/venv-python.fake" "$@" \
        "$tools/bash" "$repo/models/scripts/make-coreml-fixtures.sh" >"$tmp/out" 2>"$tmp/err" || rc=$?
    apt=$(cat "$tmp/apt.log")
    local dest="$home/.cache/anefleet/test-models/coreml"
    [[ $rc -eq $want_rc ]] || problem="exit $rc, want $want_rc"
    same_calls apt-get "$apt" "$want_apt"
    if [[ $want_rc -eq 0 ]]; then
        [[ $(tail -n1 "$tmp/out") == "$dest" && -f $dest/plain.mlpackage && -f $dest/.complete ]] ||
            problem="${problem:+$problem; }no fixtures in $dest, or not printed last"
    fi
    verdict "$name" "$tmp/err"
    setup="" want_err=""
}
venv_package() { touch "$state/venv-package"; }
half_made_venv() { # python3.11-venv there; an earlier run's venv points at a Python that is gone
    venv_package
    mkdir -p "$home/.cache/anefleet/venv-coremltools/bin"
    ln -s /nonexistent/python3.9 "$home/.cache/anefleet/venv-coremltools/bin/python"
}
no_python() { rm "$bin/python3"; }

want_err="installing python3.11-venv"
case_ "Debian's python3 without python3.11-venv -> installs python3.11-venv, makes the venv and the fixtures" 0 \
    $'update -qq\ninstall -y -qq python3.11-venv'
setup=half_made_venv
case_ "a venv half made by an earlier run (its interpreter gone) -> made again, fixtures made" 0 ""
setup=no_python
case_ "no python3 at all -> installs python3, then python3.11-venv" 0 \
    $'update -qq\ninstall -y -qq python3\nupdate -qq\ninstall -y -qq python3.11-venv'
want_err="still cannot make a virtual environment"
case_ "python3.11-venv installed but still no ensurepip -> exit 1, says so" 1 \
    $'update -qq\ninstall -y -qq python3.11-venv' FAKE_APT_NOOP=1
setup=venv_package
want_err="PYTHON=/nowhere/python3 is not a command"
case_ "PYTHON names no command -> exit 1, installs nothing" 1 "" PYTHON=/nowhere/python3

exit $failed
