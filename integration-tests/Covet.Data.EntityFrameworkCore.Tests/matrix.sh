#!/usr/bin/env bash
# Runs the EF Core compatibility matrix (Matrix.<Provider>.<Row> tests) against the test servers and prints it as the
# Markdown table for the README.
#
#   integration-tests/Covet.Data.EntityFrameworkCore.Tests/matrix.sh             the whole matrix
#   integration-tests/Covet.Data.EntityFrameworkCore.Tests/matrix.sh Postgres    one provider column (Postgres, Sqlite, MySql)
#
# Starts the servers (scripts/servers.sh start) only when they are not running. Exit code: dotnet test's.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CONFIG="${COVET_TEST_CONFIGURATION:-Release}"
FILTER="FullyQualifiedName~Covet.Data.EntityFrameworkCore.Tests.Matrix.${1:-}"

"$ROOT/scripts/servers.sh" status >/dev/null 2>&1 || "$ROOT/scripts/servers.sh" start
eval "$("$ROOT/scripts/servers.sh" env)"

MATRIX="$HERE/bin/$CONFIG/net10.0/ef-compatibility-matrix.md"
rm -f "$MATRIX"
status=0
dotnet test "$HERE/Covet.Data.EntityFrameworkCore.Tests.csproj" -c "$CONFIG" --filter "$FILTER" >&2 || status=$?
if [[ -f "$MATRIX" ]]; then
    cat "$MATRIX"
else
    echo "matrix.sh: no matrix was written (did the run start? see the dotnet test output above)" >&2
    status=${status/#0/1}
fi
exit "$status"
