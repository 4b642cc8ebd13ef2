namespace Covet.Data.Benchmarks.Infrastructure;

/// <summary>Benchmark categories (one per database) and the environment variables holding their connection strings.</summary>
public static class Databases
{
    /// <summary>Category of benchmarks that need PostgreSQL (<see cref="PostgreSqlVariable"/>).</summary>
    public const string PostgreSql = "PostgreSQL";

    /// <summary>Category of benchmarks that need MariaDB/MySQL (<see cref="MySqlVariable"/>).</summary>
    public const string MariaDb = "MariaDB";

    /// <summary>Category of SQLite benchmarks (a temp file; no server).</summary>
    public const string Sqlite = "SQLite";

    /// <summary>Category of benchmarks that touch no database.</summary>
    public const string Cpu = "CPU";

    public const string Async = "Async";
    public const string Sync = "Sync";

    public const string PostgreSqlVariable = "COVET_TEST_PG";
    public const string MySqlVariable = "COVET_TEST_MYSQL";

    /// <summary>The PostgreSQL connection string, or a clear exception.</summary>
    public static string PostgreSqlConnectionString => Require(PostgreSqlVariable, PostgreSql);

    /// <summary>The MariaDB connection string, or a clear exception.</summary>
    public static string MySqlConnectionString => Require(MySqlVariable, MariaDb);

    public static string? VariableFor(string category) => category switch
    {
        PostgreSql => PostgreSqlVariable,
        MariaDb => MySqlVariable,
        _ => null,
    };

    public static string MissingMessage(string variable, string category) =>
        $"Environment variable {variable} is not set, but {category} benchmarks were selected. From the repository root run " +
        "`scripts/servers.sh start` (if the servers are not running) and `eval \"$(scripts/servers.sh env)\"`, then retry; " +
        $"or select only other benchmarks, e.g. `--anyCategories {Sqlite} {Cpu}`.";

    private static string Require(string variable, string category) =>
        Environment.GetEnvironmentVariable(variable) is { Length: > 0 } value
            ? value
            : throw new InvalidOperationException(MissingMessage(variable, category));
}
