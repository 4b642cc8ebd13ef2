using System.Data;
using System.Data.Common;

namespace Covet.Data.Providers;

/// <summary>
/// SQLite through Microsoft.Data.Sqlite. There is no network, so liveness is the connection's state and the reset runs
/// inline on Close: it drops TEMP tables and views and detaches attached databases (an open transaction is rolled back by
/// the pool before any dialect reset).
/// </summary>
internal sealed class SqliteDialect : ProviderDialect
{
    public override string Name => "sqlite";

    public override bool ResetIsLocal => true;

    public override bool OpenWhenOpenIsNoOp => true;

    public override bool OpensWithoutConnectionString => true;

    // Microsoft.Data.Sqlite's Open ignores an ambient TransactionScope (its EnlistTransaction throws NotSupportedException):
    // statements inside a scope autocommit. Covet does the same rather than fail the open (conformance: tx.scope-*).
    public override bool EnlistsInAmbientTransaction(string providerConnectionString) => false;

    // Microsoft.Data.Sqlite pools nothing that lives in memory or is asked not to be pooled: a private in-memory database
    // must not reach the next borrower, and a shared-cache one must disappear when its last connection closes.
    public override bool KeepsIdle(string providerConnectionString)
    {
        var builder = new DbConnectionStringBuilder { ConnectionString = providerConnectionString };
        string Get(params string[] keys)
        {
            foreach (var key in keys)
                if (builder.TryGetValue(key, out var value))
                    return Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture)?.Trim() ?? "";
            return "";
        }
        var dataSource = Get("Data Source", "DataSource", "Filename");
        if (dataSource.Length == 0 || dataSource.Equals(":memory:", StringComparison.OrdinalIgnoreCase))
            return false;
        if (Get("Mode").Equals("Memory", StringComparison.OrdinalIgnoreCase))
            return false;
        return !Get("Pooling").Equals("false", StringComparison.OrdinalIgnoreCase);
    }

    // SQLite has no server-side code that could create session objects: only a statement naming TEMP (CREATE TEMP
    // TABLE, temp.x) or ATTACH can leave anything the reset removes, so other statements need no reset at all.
    public override bool MayChangeSession(string? commandText) =>
        commandText is null
        || commandText.Contains("temp", StringComparison.OrdinalIgnoreCase)
        || commandText.Contains("attach", StringComparison.OrdinalIgnoreCase);

    public override string PhysicalConnectionString(DbProviderFactory factory, string providerConnectionString, CovetPoolOptions options)
    {
        var builder = factory.CreateConnectionStringBuilder()!;
        builder.ConnectionString = providerConnectionString;
        builder["Pooling"] = false;
        return builder.ConnectionString;
    }

    public override ValueTask<bool> PingAsync(DbConnection connection, CovetPoolOptions options, TimeSpan timeout, bool async, CancellationToken cancellationToken) =>
        options.HealthQuery is null
            ? ValueTask.FromResult(connection.State == ConnectionState.Open)
            : base.PingAsync(connection, options, timeout, async, cancellationToken);

    public override async ValueTask ResetAsync(DbConnection connection, CovetPoolOptions options, bool async, CancellationToken cancellationToken)
    {
        if (options.ResetQuery is not null)
        {
            await base.ResetAsync(connection, options, async, cancellationToken).ConfigureAwait(false);
            return;
        }
        var statements = new List<string>();
        using (var command = connection.CreateCommand())
        {
            command.CommandText =
                "SELECT 'DROP ' || type || ' temp.\"' || replace(name, '\"', '\"\"') || '\"' FROM temp.sqlite_master WHERE type IN ('table', 'view') " +
                "UNION ALL SELECT 'DETACH DATABASE \"' || replace(name, '\"', '\"\"') || '\"' FROM pragma_database_list WHERE name NOT IN ('main', 'temp')";
            using var reader = command.ExecuteReader();
            while (reader.Read())
                statements.Add(reader.GetString(0));
        }
        foreach (var sql in statements)
            await ExecuteAsync(connection, sql, options, async: false, cancellationToken).ConfigureAwait(false);
    }
}
