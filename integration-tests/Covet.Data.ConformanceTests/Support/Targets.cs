using System.Data.Common;
using Microsoft.Data.Sqlite;
using MySqlConnector;
using Npgsql;

namespace Covet.Data.ConformanceTests;

/// <summary>A database a row runs on: PostgreSQL (Npgsql), MariaDB (MySqlConnector), SQLite in a file or in memory.</summary>
public enum TargetKind
{
    Pg,
    MySql,
    SqliteFile,
    SqliteMemory,
}

/// <summary>How a row's connections are made: through the factory (connection string set on a new connection) or a data source.</summary>
public enum PathKind
{
    Factory,
    DataSource,
}

internal static class Targets
{
    public static readonly TargetKind[] All = [TargetKind.Pg, TargetKind.MySql, TargetKind.SqliteFile, TargetKind.SqliteMemory];
    public static readonly TargetKind[] Servers = [TargetKind.Pg, TargetKind.MySql];
    public static readonly TargetKind[] Sqlite = [TargetKind.SqliteFile, TargetKind.SqliteMemory];
    public static readonly TargetKind[] Persistent = [TargetKind.Pg, TargetKind.MySql, TargetKind.SqliteFile];

    public static DbProviderFactory Factory(TargetKind kind) => kind switch
    {
        TargetKind.Pg => NpgsqlFactory.Instance,
        TargetKind.MySql => MySqlConnectorFactory.Instance,
        _ => SqliteFactory.Instance,
    };

    public static bool IsSqlite(this TargetKind kind) => kind is TargetKind.SqliteFile or TargetKind.SqliteMemory;

    /// <summary>An unpooled connection string for setup and cleanup outside the row.</summary>
    public static string Admin(TargetKind kind) => kind switch
    {
        TargetKind.Pg => new NpgsqlConnectionStringBuilder(Env.Require("COVET_TEST_PG")) { Pooling = false, Timeout = 5 }.ConnectionString,
        TargetKind.MySql => new MySqlConnectionStringBuilder(Env.Require("COVET_TEST_MYSQL")) { Pooling = false, ConnectionTimeout = 5 }.ConnectionString,
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    /// <summary>
    /// The provider connection string of one run: a pool of its own (a unique application name or file), of
    /// <paramref name="poolSize"/> connections, so the next borrower gets the same physical connection. Timeouts are short so a
    /// connection that is never given back fails the row in seconds.
    /// </summary>
    public static string Provider(TargetKind kind, string runId, string? file, int poolSize) => kind switch
    {
        TargetKind.Pg => new NpgsqlConnectionStringBuilder(Env.Require("COVET_TEST_PG"))
            { ApplicationName = "cf-" + runId, MaxPoolSize = poolSize, Timeout = 3 }.ConnectionString,
        TargetKind.MySql => new MySqlConnectionStringBuilder(Env.Require("COVET_TEST_MYSQL"))
            { ApplicationName = "cf-" + runId, MaximumPoolSize = (uint)poolSize, ConnectionTimeout = 3 }.ConnectionString,
        TargetKind.SqliteFile => new SqliteConnectionStringBuilder { DataSource = file }.ConnectionString,
        _ => "Data Source=:memory:",
    };

    /// <summary>The same pool size as the provider's, and short waits, for Covet.</summary>
    public static string CovetKeywords(int poolSize) =>
        $";Covet.MaxPoolSize={poolSize};Covet.AcquireTimeout=3;Covet.AutoScale=false";

    public static void ClearProviderPools(TargetKind kind)
    {
        switch (kind)
        {
            case TargetKind.Pg: NpgsqlConnection.ClearAllPools(); break;
            case TargetKind.MySql: MySqlConnection.ClearAllPools(); break;
            default: SqliteConnection.ClearAllPools(); break;
        }
    }
}
