#!/usr/bin/env bash
# Runs Covet.Data's test suites (unit + integration) against throwaway PostgreSQL/MariaDB servers.
#
#   ./scripts/test.sh                               everything
#   ./scripts/test.sh --filter "FullyQualifiedName~Pool"   extra args go to every `dotnet test`
#   COVET_SKIP_SERVERS=1 ./scripts/test.sh          no servers (e.g. unit tests only)
#
# Environment overrides:
#   COVET_TEST_PROJECTS    whitespace-separated test .csproj paths (relative to the repo root or
#                          absolute); default: the unit and the integration test project
#   COVET_SKIP_SERVERS=1   neither start nor stop scripts/servers.sh
#   COVET_TEST_CONFIGURATION   build configuration, default Release
#   COVET_TEST_HANG_TIMEOUT    per-test hang timeout for VSTest's blame collector (default 15m;
#                          empty disables): a hung test aborts its run instead of eating CI's time
#
# Prints a per-project summary and, as its very last line, "N passed, N failed, N skipped".
# Exit code: 0 only if everything built, no test failed and at least one test ran.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
CONFIG="${COVET_TEST_CONFIGURATION:-Release}"
HANG_TIMEOUT="${COVET_TEST_HANG_TIMEOUT-15m}"

DEFAULT_PROJECTS="tests/Covet.Data.Tests/Covet.Data.Tests.csproj
integration-tests/Covet.Data.IntegrationTests/Covet.Data.IntegrationTests.csproj
integration-tests/Covet.Data.ConformanceTests/Covet.Data.ConformanceTests.csproj
integration-tests/Covet.Data.EntityFrameworkCore.Tests/Covet.Data.EntityFrameworkCore.Tests.csproj
integration-tests/Covet.Data.EntityFrameworkCore.Pomelo.Tests/Covet.Data.EntityFrameworkCore.Pomelo.Tests.csproj
integration-tests/Covet.Data.AspNetCore.Tests/Covet.Data.AspNetCore.Tests.csproj"
read -r -d '' -a PROJECTS <<<"${COVET_TEST_PROJECTS:-$DEFAULT_PROJECTS}" || true

say() { echo "test.sh: $*" >&2; }

# ---------------------------------------------------------------------------------------
# servers: always stopped again on exit, including failures and Ctrl-C

SERVERS_UP=0
stop_servers() {
    if ((SERVERS_UP)); then
        SERVERS_UP=0
        "$ROOT/scripts/servers.sh" stop >&2 || say "WARNING: stopping the servers failed"
    fi
}
RESULTS="$(mktemp -d -t covet-test-results.XXXXXX)"
KEEP_RESULTS=0
# shellcheck disable=SC2317  # called from the EXIT trap
on_exit() {
    stop_servers
    ((KEEP_RESULTS)) || rm -rf -- "$RESULTS"
}
trap on_exit EXIT
trap 'say "interrupted"; exit 130' INT
trap 'say "terminated"; exit 143' TERM

# The final line, printed after the servers are down so nothing follows it.
finish() {  # finish EXIT_CODE PASSED FAILED SKIPPED
    stop_servers
    echo "$2 passed, $3 failed, $4 skipped"
    exit "$1"
}

# ---------------------------------------------------------------------------------------
# build once

for proj in "${PROJECTS[@]}"; do
    if [[ ! -f "$proj" ]]; then
        say "ERROR: test project $proj does not exist (set COVET_TEST_PROJECTS to run a subset)"
        finish 1 0 0 0
    fi
done

build_args=(-c "$CONFIG")
# On CI don't leave MSBuild/Roslyn server processes behind holding the job's output open.
if [[ -n "${CI:-}" ]]; then build_args+=(--disable-build-servers); fi

if [[ -z "${COVET_TEST_PROJECTS:-}" && -f Covet.Data.slnx ]]; then build_targets=(Covet.Data.slnx)
elif [[ -z "${COVET_TEST_PROJECTS:-}" && -f Covet.Data.sln ]]; then build_targets=(Covet.Data.sln)
else build_targets=("${PROJECTS[@]}")
fi
for target in "${build_targets[@]}"; do
    say "building $target ($CONFIG)"
    if ! dotnet build "$target" "${build_args[@]}"; then
        say "ERROR: build of $target failed"
        finish 1 0 0 0
    fi
done

# ---------------------------------------------------------------------------------------
# the dashboard's browser test drives Debian's chromium (Playwright never downloads a browser here)

if [[ " ${PROJECTS[*]} " == *"Covet.Data.AspNetCore.Tests"* && ! -x /usr/bin/chromium ]]; then
    say "installing chromium for the dashboard's browser test (first run only; log: /tmp/covet-apt-chromium.log)"
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o Dpkg::Use-Pty=0 chromium; } \
            </dev/null >/tmp/covet-apt-chromium.log 2>&1; then
        tail -n 40 /tmp/covet-apt-chromium.log >&2
        say "ERROR: apt-get install chromium failed"
        finish 1 0 0 0
    fi
fi

# ---------------------------------------------------------------------------------------
# servers

if [[ "${COVET_SKIP_SERVERS:-0}" == 1 ]]; then
    say "COVET_SKIP_SERVERS=1: not starting database servers"
else
    SERVERS_UP=1   # before start: a half-started set is cleaned up by the trap too
    "$ROOT/scripts/servers.sh" start || { say "ERROR: starting the database servers failed"; finish 1 0 0 0; }
    eval "$("$ROOT/scripts/servers.sh" env)"
fi

# ---------------------------------------------------------------------------------------
# run each project, one TRX results directory per project

test_args=(--no-build -c "$CONFIG")
if [[ -n "$HANG_TIMEOUT" ]]; then
    test_args+=(--blame-hang-timeout "$HANG_TIMEOUT" --blame-hang-dump-type none)
fi

# attr NAME TAG -> value of the numeric attribute NAME="..." in TAG (0 if absent)
attr() {
    local v
    v="$(sed -n "s/.*[[:space:]]$1=\"\([0-9]*\)\".*/\1/p" <<<"$2")"
    echo "${v:-0}"
}

sum_passed=0 sum_failed=0 sum_skipped=0
rc=0
summary=()
failed_tests=()
for proj in "${PROJECTS[@]}"; do
    name="$(basename "$proj" .csproj)"
    dir="$RESULTS/$name"
    say "testing $name"
    set +e
    dotnet test "$proj" "${test_args[@]}" --results-directory "$dir" \
        --logger "trx;LogFileName=$name.trx" "$@"
    test_rc=$?
    set -e

    total=0 passed=0 failed=0
    mapfile -t trx_files < <(find "$dir" -name '*.trx' -type f 2>/dev/null | sort)
    for trx in "${trx_files[@]}"; do
        counters="$(grep -o '<Counters [^>]*>' "$trx" | head -n1 || true)"
        [[ -n "$counters" ]] || continue
        total=$((total + $(attr total "$counters")))
        passed=$((passed + $(attr passed "$counters")))
        # errors, timeouts and aborts count as failures, not as skips
        failed=$((failed + $(attr failed "$counters") + $(attr error "$counters") \
                         + $(attr timeout "$counters") + $(attr aborted "$counters")))
        # names of the failed tests, for the summary
        while IFS= read -r t; do
            failed_tests+=("$name: $t")
        done < <(grep -o '<UnitTestResult [^>]*outcome="\(Failed\|Error\|Timeout\|Aborted\)"[^>]*>' "$trx" \
                   | sed -n 's/.* testName="\([^"]*\)".*/\1/p' \
                   | sed 's/&lt;/</g; s/&gt;/>/g; s/&quot;/"/g; s/&apos;/'"'"'/g; s/&amp;/\&/g')
    done
    skipped=$((total - passed - failed))
    ((skipped >= 0)) || skipped=0

    note=""
    if ((${#trx_files[@]} == 0)); then
        note="  NO TRX RESULTS (test run crashed or did not start)"
    elif ((test_rc != 0)); then
        note="  (dotnet test exit code $test_rc)"
    fi
    if ((test_rc != 0 || ${#trx_files[@]} == 0)) && ((failed == 0)); then
        # The run died without a failed result (testhost crash, blame hang timeout): the test
        # that was running has no result of its own, so count the aborted run as one failure.
        failed=1
        failed_tests+=("$name: test run aborted (crash or hang, see the dotnet test output above)")
    fi
    ((failed == 0)) || rc=1
    summary+=("$(printf '  %-36s %5d passed %5d failed %5d skipped%s' "$name" "$passed" "$failed" "$skipped" "$note")")
    sum_passed=$((sum_passed + passed))
    sum_failed=$((sum_failed + failed))
    sum_skipped=$((sum_skipped + skipped))
done

if ((sum_passed + sum_failed == 0)); then
    say "ERROR: no test ran"
    rc=1
fi
if ((rc != 0)); then
    KEEP_RESULTS=1
    say "TRX results kept in $RESULTS"
fi

stop_servers
echo
echo "==== test summary ===="
printf '%s\n' "${summary[@]}"
if ((${#failed_tests[@]})); then
    echo "failed tests:"
    printf '  %s\n' "${failed_tests[@]}"
fi
finish "$rc" "$sum_passed" "$sum_failed" "$sum_skipped"
