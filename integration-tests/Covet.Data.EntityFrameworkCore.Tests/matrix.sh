#!/usr/bin/env bash
# Runs the EF Core compatibility matrix (Matrix.<Provider>.<Row> tests) against the test servers and prints it as the
# Markdown table for the README. Two test projects make the columns: this one (EF Core 10: Postgres, Sqlite, MySql on
# Oracle's provider) and ../Covet.Data.EntityFrameworkCore.Pomelo.Tests (EF Core 9: Pomelo, whose releases support EF Core
# 9, not 10). The Pomelo project runs first; its cells (ef-compatibility-cells.json) join this project's table through
# $COVET_EF_MATRIX_MERGE.
#
#   integration-tests/Covet.Data.EntityFrameworkCore.Tests/matrix.sh             the whole matrix (both projects)
#   integration-tests/Covet.Data.EntityFrameworkCore.Tests/matrix.sh Postgres    one provider column (Postgres, Sqlite, MySql, Pomelo)
#
# Starts the servers (scripts/servers.sh start) only when they are not running. Exit code: the first failing dotnet test's.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
POMELO="$ROOT/integration-tests/Covet.Data.EntityFrameworkCore.Pomelo.Tests"
CONFIG="${COVET_TEST_CONFIGURATION:-Release}"
COLUMN="${1:-}"
FILTER="FullyQualifiedName~Covet.Data.EntityFrameworkCore.Tests.Matrix.$COLUMN"

"$ROOT/scripts/servers.sh" status >/dev/null 2>&1 || "$ROOT/scripts/servers.sh" start
eval "$("$ROOT/scripts/servers.sh" env)"

status=0
MATRIX=""
unset COVET_EF_MATRIX_MERGE

if [[ -z "$COLUMN" || "$COLUMN" == Pomelo* ]]; then
    MATRIX="$POMELO/bin/$CONFIG/net10.0/ef-compatibility-matrix.md"
    CELLS="$POMELO/bin/$CONFIG/net10.0/ef-compatibility-cells.json"
    rm -f "$MATRIX" "$CELLS"
    dotnet test "$POMELO/Covet.Data.EntityFrameworkCore.Pomelo.Tests.csproj" -c "$CONFIG" --filter "$FILTER" >&2 || status=$?
    if [[ -z "$COLUMN" && -f "$CELLS" ]]; then
        export COVET_EF_MATRIX_MERGE="$CELLS"
    fi
fi

if [[ "$COLUMN" != Pomelo* ]]; then
    MATRIX="$HERE/bin/$CONFIG/net10.0/ef-compatibility-matrix.md"
    rm -f "$MATRIX"
    rc=0
    dotnet test "$HERE/Covet.Data.EntityFrameworkCore.Tests.csproj" -c "$CONFIG" --filter "$FILTER" >&2 || rc=$?
    ((status != 0)) || status=$rc
fi

if [[ -f "$MATRIX" ]]; then
    cat "$MATRIX"
else
    echo "matrix.sh: no matrix was written (did the run start? see the dotnet test output above)" >&2
    status=${status/#0/1}
fi
exit "$status"
