namespace Covet.Data.EntityFrameworkCore.Benchmarks.Infrastructure;

/// <summary>The benchmark category of PostgreSQL and the environment variable holding its connection string.</summary>
public static class Databases
{
    /// <summary>Category of benchmarks that need PostgreSQL (<see cref="PostgreSqlVariable"/>): every benchmark here.</summary>
    public const string PostgreSql = "PostgreSQL";

    public const string PostgreSqlVariable = "COVET_TEST_PG";

    /// <summary>The PostgreSQL connection string, or a clear exception.</summary>
    public static string PostgreSqlConnectionString =>
        Environment.GetEnvironmentVariable(PostgreSqlVariable) is { Length: > 0 } value
            ? value
            : throw new InvalidOperationException(MissingMessage(PostgreSqlVariable, PostgreSql));

    public static string? VariableFor(string category) => category == PostgreSql ? PostgreSqlVariable : null;

    public static string MissingMessage(string variable, string category) =>
        $"Environment variable {variable} is not set, but {category} benchmarks were selected (every EF Core benchmark needs " +
        "PostgreSQL). From the repository root run `scripts/servers.sh start` (if the server is not running) and " +
        "`eval \"$(scripts/servers.sh env)\"`, then retry.";
}
