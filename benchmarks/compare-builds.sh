#!/usr/bin/env bash
# Compares BenchmarkDotNet rows of benchmarks/Covet.Data.Benchmarks between two builds of the repository, interleaved.
#
#   benchmarks/compare-builds.sh <commitA> <commitB> [filter] [rounds]
#
#   commitA   the build before (the baseline), any commit-ish (c697e2d, main~1, a branch, ...)
#   commitB   the build after
#   filter    BenchmarkDotNet globs, space-separated in ONE argument (default: the SQLite open -> close rows of Covet
#             and of Microsoft.Data.Sqlite's own pool, sync and async; the provider rows are the control: Covet's
#             change cannot move them, so their ratio shows how much the machine drifted)
#   rounds    runs of each build (default 5); run order A B, B A, A B, ... so a drifting load favours neither
#
# What it does: a detached worktree per commit ($COMPARE_ROOT/covet-bench-<sha>, reused if present), one Release build
# of each commit's OWN benchmark project (run names must match: the rows are listed in both builds and only the common
# ones are run), then `rounds` BenchmarkDotNet runs per build, alternating, each its own process, the load average
# noted before each. Every run is in-process (BenchmarkDotNet's default toolchain would generate and build a project
# per run) with the same short job. At the end, one table per row: each build's min and median of the run means, the
# ratio B/A of the medians (and of the mins), each run's mean +- BenchmarkDotNet's error (half the 99.9% interval),
# and the allocation per operation. A verdict "slower"/"faster" needs every run of one build to be above every run of
# the other (the ranges do not overlap); otherwise "within noise".
#
# Environment:
#   COMPARE_ROOT            where the worktrees go (default /tmp)
#   COMPARE_OUT             results directory (default $COMPARE_ROOT/covet-compare-<shaA>-<shaB>-<UTC time>)
#   COMPARE_JOB_ARGS        the job (default "--job short --warmupCount 3 --iterationCount 15 --inProcess")
#   COMPARE_KEEP_WORKTREES  1: keep the worktrees this run created (default: removed at the end)
# PostgreSQL / MariaDB rows need the servers and their variables, as for any run of the suite:
#   scripts/servers.sh start; eval "$(scripts/servers.sh env)"
# Needs git, the .NET SDK and python3 (for the summary).
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-2}"; }
[[ "${1:-}" == -h || "${1:-}" == --help ]] && usage 0
[[ $# -ge 2 && $# -le 4 ]] || usage

REPO="$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)"
PROJECT_DIR=benchmarks/Covet.Data.Benchmarks
PROJECT=$PROJECT_DIR/Covet.Data.Benchmarks.csproj
DEFAULT_FILTER='*OpenCloseBenchmarks.Sqlite_MicrosoftData_Async *OpenCloseBenchmarks.Sqlite_Covet_Async *OpenCloseBenchmarks.Sqlite_MicrosoftData_Sync *OpenCloseBenchmarks.Sqlite_Covet_Sync'
FILTER="${3:-$DEFAULT_FILTER}"
ROUNDS="${4:-5}"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || { echo "compare-builds: rounds must be a positive number, got '$ROUNDS'" >&2; exit 2; }
read -r -a FILTER_ARGS <<<"$FILTER"
read -r -a JOB_ARGS <<<"${COMPARE_JOB_ARGS:---job short --warmupCount 3 --iterationCount 15 --inProcess}"
ROOT="${COMPARE_ROOT:-/tmp}"

resolve() { git -C "$REPO" rev-parse --verify --quiet "$1^{commit}" || { echo "compare-builds: no commit '$1'" >&2; exit 2; }; }
SHA_A="$(resolve "$1")"; SHA_B="$(resolve "$2")"
SHORT_A="${SHA_A:0:10}"; SHORT_B="${SHA_B:0:10}"
OUT="${COMPARE_OUT:-$ROOT/covet-compare-$SHORT_A-$SHORT_B-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$OUT/runs"

CREATED=()
cleanup() {
    [[ "${COMPARE_KEEP_WORKTREES:-0}" == 1 ]] && return
    for wt in "${CREATED[@]}"; do git -C "$REPO" worktree remove --force "$wt" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT

# A detached worktree at the commit (reused when one is already there at that commit), built once in Release; sets DLL.
prepare() {
    local sha="$1" wt="$ROOT/covet-bench-${1:0:10}"
    if [[ -d "$wt" ]]; then
        [[ "$(git -C "$wt" rev-parse HEAD 2>/dev/null)" == "$sha" ]] ||
            { echo "compare-builds: $wt exists but is not at $sha; remove it (git worktree remove $wt)" >&2; exit 1; }
    else
        git -C "$REPO" worktree add --detach "$wt" "$sha" >/dev/null
        CREATED+=("$wt")
    fi
    echo "compare-builds: building ${sha:0:10} in $wt" >&2
    if ! (cd "$wt" && dotnet build -c Release "$PROJECT" -nologo -v q >"$OUT/build-${sha:0:10}.log" 2>&1); then
        tail -20 "$OUT/build-${sha:0:10}.log" >&2
        echo "compare-builds: the build of ${sha:0:10} failed (log: $OUT/build-${sha:0:10}.log)" >&2
        exit 1
    fi
    DLL="$(find "$wt/$PROJECT_DIR/bin/Release" -name Covet.Data.Benchmarks.dll -path '*/net*/*' | head -1)"
    [[ -n "$DLL" ]] || { echo "compare-builds: no Covet.Data.Benchmarks.dll under $wt/$PROJECT_DIR/bin/Release" >&2; exit 1; }
}
prepare "$SHA_A"; DLL_A="$DLL"; prepare "$SHA_B"; DLL_B="$DLL"
WT_A="$ROOT/covet-bench-$SHORT_A"; WT_B="$ROOT/covet-bench-$SHORT_B"

# The rows each build has for the filter; only those in both are run (same names, each build's own code).
list_rows() { (cd "$1" && dotnet "$2" --list flat --filter "${FILTER_ARGS[@]}") | grep -E '^[A-Za-z_][A-Za-z0-9_.]*\.[A-Za-z0-9_]+$' | sort -u; }
list_rows "$WT_A" "$DLL_A" >"$OUT/rows-A.txt"; list_rows "$WT_B" "$DLL_B" >"$OUT/rows-B.txt"
comm -12 "$OUT/rows-A.txt" "$OUT/rows-B.txt" >"$OUT/rows.txt"
if ! cmp -s "$OUT/rows-A.txt" "$OUT/rows-B.txt"; then
    echo "compare-builds: rows in only one build (left out):" >&2
    comm -3 "$OUT/rows-A.txt" "$OUT/rows-B.txt" | sed 's/^\t/  B only: /; t; s/^/  A only: /' >&2
fi
[[ -s "$OUT/rows.txt" ]] || { echo "compare-builds: no row matches '$FILTER' in both builds" >&2; exit 1; }
mapfile -t ROWS <"$OUT/rows.txt"
{
    echo "A=$SHA_A $(git -C "$REPO" log -1 --format=%s "$SHA_A" | cut -c1-100)"
    echo "B=$SHA_B $(git -C "$REPO" log -1 --format=%s "$SHA_B" | cut -c1-100)"
    echo "rows: ${ROWS[*]}"; echo "job: ${JOB_ARGS[*]}"; echo "rounds: $ROUNDS"; echo "cores: $(nproc)"
} | tee "$OUT/meta.txt" >&2

run_one() { # side round
    local side="$1" round="$2" wt dll sha dir start rc load_before load_after
    if [[ $side == A ]]; then wt="$WT_A"; dll="$DLL_A"; sha="$SHA_A"; else wt="$WT_B"; dll="$DLL_B"; sha="$SHA_B"; fi
    dir="$OUT/runs/r$round-$side"
    load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "compare-builds: $(date -u +%T) round $round/$ROUNDS build $side (${sha:0:10}), load $load_before" >&2
    start=$SECONDS
    rc=0
    (cd "$wt" && dotnet "$dll" --filter "${ROWS[@]}" "${JOB_ARGS[@]}" --exporters json --artifacts "$dir") >"$dir.log" 2>&1 || rc=$?
    load_after="$(cut -d' ' -f1-3 /proc/loadavg)"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$side" "$sha" "$load_before" "$load_after" "$((SECONDS - start))" "$rc" >>"$OUT/runs.tsv"
    if [[ $rc != 0 ]]; then
        grep -E 'FAILED|Exception|not reachable|not set' "$dir.log" | head -5 >&2 || true
        echo "compare-builds: run $round $side failed (exit $rc, log $dir.log)" >&2
        exit 1
    fi
}
printf 'round\tside\tcommit\tload_before\tload_after\tseconds\texit\n' >"$OUT/runs.tsv"
for ((round = 1; round <= ROUNDS; round++)); do
    if ((round % 2)); then run_one A "$round"; run_one B "$round"; else run_one B "$round"; run_one A "$round"; fi
done

python3 - "$OUT" <<'PY' | tee "$OUT/summary.md"
import csv, glob, json, os, statistics, sys

out = sys.argv[1]
meta = open(os.path.join(out, "meta.txt")).read().splitlines()
runs = list(csv.DictReader(open(os.path.join(out, "runs.tsv")), delimiter="\t"))
data = {}  # row -> side -> [(round, mean, error, alloc, load)]
for run in runs:
    for path in glob.glob(os.path.join(out, "runs", f"r{run['round']}-{run['side']}", "results", "*.json")):
        for b in json.load(open(path))["Benchmarks"]:
            s = b["Statistics"]
            if s is None:
                continue
            alloc = (b.get("Memory") or {}).get("BytesAllocatedPerOperation")
            data.setdefault(b["FullName"], {}).setdefault(run["side"], []).append(
                (int(run["round"]), s["Mean"], s["ConfidenceInterval"]["Margin"], alloc, run["load_before"].split()[0]))

def ns(v):  # BenchmarkDotNet writes "NaN" for the error of a job with one iteration (--job dry)
    try:
        return f"{float(v):,.1f}"
    except (TypeError, ValueError):
        return "n/a"
print("# Interleaved comparison\n")
for line in meta:
    print(f"- {line}")
print("- times in ns per operation; each run's Mean (BenchmarkDotNet's error = half the 99.9% interval); load = 1-minute load average before the run\n")
print("| Row | A min | A median | B min | B median | B/A median | B/A min | A max/min | B max/min | Alloc/op A → B (bytes) | Verdict |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for row in sorted(data):
    a, b = data[row].get("A", []), data[row].get("B", [])
    if not a or not b:
        print(f"| {row} | missing runs | | | | | | | | | |")
        continue
    am, bm = [m for _, m, *_ in a], [m for _, m, *_ in b]
    if min(len(am), len(bm)) < 3:
        verdict = "too few runs (3+ needed)"
    else:
        verdict = "B slower" if min(bm) > max(am) else "B faster" if max(bm) < min(am) else "within noise"
    allocs = f"{a[0][3]} → {b[0][3]}"
    print(f"| {row.rsplit('.', 1)[-1]} | {ns(min(am))} | {ns(statistics.median(am))} | {ns(min(bm))} | {ns(statistics.median(bm))} | "
          f"{statistics.median(bm) / statistics.median(am):.3f} | {min(bm) / min(am):.3f} | {max(am) / min(am):.2f} | "
          f"{max(bm) / min(bm):.2f} | {allocs} | {verdict} |")
print("\nRuns (round: mean ± error @ load):\n")
for row in sorted(data):
    print(f"- {row.rsplit('.', 1)[-1]}")
    for side in ("A", "B"):
        cells = ", ".join(f"r{r}: {ns(m)} ± {ns(e)} @{l}" for r, m, e, _, l in sorted(data[row].get(side, [])))
        print(f"  - {side}: {cells}")
PY
echo "compare-builds: results in $OUT (summary.md, runs.tsv, runs/*.log)" >&2
