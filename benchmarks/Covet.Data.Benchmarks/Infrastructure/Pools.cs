using System.Data.Common;
using BenchmarkDotNet.Attributes;
using Microsoft.Data.Sqlite;
using MySqlConnector;
using Npgsql;

namespace Covet.Data.Benchmarks.Infrastructure;

/// <summary>The Covet configurations compared by the benchmarks.</summary>
public enum CovetVariant
{
    /// <summary><c>new CovetPoolOptions()</c>: pre-ping on (500 ms alive window), leak detection on (adaptive stack traces: 1 checkout in 32), reset on return.</summary>
    Default,

    /// <summary><see cref="CovetPoolOptions.LeakStackTraces"/> = Always: a stack trace at every checkout.</summary>
    LeakTracesAlways,

    /// <summary><see cref="CovetPoolOptions.PrePing"/> off.</summary>
    NoPrePing,

    /// <summary><see cref="CovetPoolOptions.LeakDetectionThreshold"/> = 0: no stack trace captured at checkout.</summary>
    NoLeakDetection,

    /// <summary><see cref="CovetPoolOptions.AliveBypassWindow"/> = 0: every checkout pays the pre-ping round trip (its real cost).</summary>
    PingEveryCheckout,

    /// <summary><see cref="CovetPoolOptions.ResetSessionOnReturn"/> off: no DISCARD ALL / COM_RESET_CONNECTION / SQLite cleanup.</summary>
    NoReset,
}

/// <summary>
/// Base of every database benchmark: creates the pools (Covet's and the providers' own), warms them, and in
/// <see cref="GlobalCleanup"/> prints Covet's pool statistics, disposes every data source and clears the providers' pools.
/// </summary>
public abstract class PoolBenchmarkBase
{
    private readonly List<(string Name, CovetDataSource Source)> _covet = [];
    private readonly List<DbDataSource> _providerSources = [];
    private readonly List<string> _sqliteFiles = [];

    // ---------------------------------------------------------------------------------------------
    // Covet

    protected CovetDataSource Covet(DbProviderFactory factory, string connectionString, CovetVariant variant, string name, int? maxPoolSize = null, TimeSpan? acquireTimeout = null)
    {
        var options = new CovetPoolOptions { PoolName = $"{name}-{variant}" };
        switch (variant)
        {
            case CovetVariant.NoPrePing:
                options.PrePing = false;
                break;
            case CovetVariant.LeakTracesAlways:
                options.LeakStackTraces = CovetLeakStackTraces.Always;
                break;
            case CovetVariant.NoLeakDetection:
                options.LeakDetectionThreshold = TimeSpan.Zero;
                break;
            case CovetVariant.PingEveryCheckout:
                options.AliveBypassWindow = TimeSpan.Zero;
                break;
            case CovetVariant.NoReset:
                options.ResetSessionOnReturn = false;
                break;
        }
        if (maxPoolSize is { } max)
            options.MaxPoolSize = max;
        if (acquireTimeout is { } timeout)
            options.AcquireTimeout = timeout;
        var source = CovetDataSource.Create(factory, connectionString, options);
        _covet.Add((options.PoolName, source));
        return source;
    }

    // ---------------------------------------------------------------------------------------------
    // The providers' own pools

    /// <summary>An <see cref="NpgsqlDataSource"/> with Npgsql's pool on (its default).</summary>
    protected NpgsqlDataSource NpgsqlPool(string connectionString, int? maxPoolSize = null, int? timeoutSeconds = null)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString) { Pooling = true };
        if (maxPoolSize is { } max)
            builder.MaxPoolSize = max;
        if (timeoutSeconds is { } timeout)
            builder.Timeout = timeout;
        var source = NpgsqlDataSource.Create(builder.ConnectionString);
        _providerSources.Add(source);
        return source;
    }

    /// <summary>A <see cref="MySqlDataSource"/> with MySqlConnector's pool on; <paramref name="connectionReset"/> true is its default.</summary>
    protected MySqlDataSource MySqlConnectorPool(string connectionString, bool connectionReset = true, int? maxPoolSize = null)
    {
        var builder = new MySqlConnectionStringBuilder(connectionString) { Pooling = true, ConnectionReset = connectionReset };
        if (maxPoolSize is { } max)
            builder.MaximumPoolSize = (uint)max;
        var source = new MySqlDataSource(builder.ConnectionString);
        _providerSources.Add(source);
        return source;
    }

    /// <summary>A new SQLite database in a temp file (deleted in cleanup); returns its connection string without pooling keywords.</summary>
    protected string NewSqliteDatabase()
    {
        var path = Path.Combine(Path.GetTempPath(), $"covet-bench-{Environment.ProcessId}-{Guid.NewGuid():N}.db");
        _sqliteFiles.Add(path);
        var connectionString = new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ConnectionString;
        using (var connection = new SqliteConnection(connectionString))
        {
            connection.Open(); // creates the file
            using var command = connection.CreateCommand();
            command.CommandText = "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY)";
            command.ExecuteNonQuery();
        }
        return new SqliteConnectionStringBuilder { DataSource = path }.ConnectionString;
    }

    /// <summary>Microsoft.Data.Sqlite with its own pool on (its default since 6.0), as a <see cref="DbDataSource"/>.</summary>
    protected DbDataSource SqlitePool(string connectionString)
    {
        var source = SqliteFactory.Instance.CreateDataSource(new SqliteConnectionStringBuilder(connectionString) { Pooling = true }.ConnectionString);
        _providerSources.Add(source);
        return source;
    }

    // ---------------------------------------------------------------------------------------------
    // Warm-up and cleanup

    /// <summary>Opens (and uses) one connection of each source, so no measured iteration pays the first physical connect.</summary>
    protected static void Warm(params DbDataSource[] sources)
    {
        foreach (var source in sources)
            Workload.SelectOneAsync(source).GetAwaiter().GetResult();
        // Let Covet's background resets finish before the first measured iteration.
        Thread.Sleep(50);
    }

    /// <summary>Disposes every data source created by this instance and clears the providers' pools.</summary>
    [GlobalCleanup]
    public void GlobalCleanup()
    {
        foreach (var (name, source) in _covet)
        {
            try
            {
                // Only the pools this benchmark case exercised (the setup creates every variant of the database; warm-up is one checkout).
                var s = source.GetStatistics();
                if (s.Checkouts > 1)
                {
                    Console.WriteLine(
                        $"// covet-stats {name}: total={s.Total} idle={s.Idle} checkouts={s.Checkouts} created={s.ConnectionsCreated} " +
                        $"destroyed={s.ConnectionsDestroyed} connectFailures={s.ConnectionFailures} prePingFailures={s.PrePingFailures} " +
                        $"healthCheckFailures={s.HealthCheckFailures} resetFailures={s.ResetFailures} leaks={s.LeaksDetected} forgotten={s.ForgottenConnections} " +
                        $"acquireTimeouts={s.AcquireTimeouts} acquireP50={s.AcquireP50.TotalMicroseconds:F0}us acquireP99={s.AcquireP99.TotalMicroseconds:F0}us " +
                        $"acquireMax={s.AcquireMax.TotalMilliseconds:F1}ms");
                }
            }
            catch (Exception e)
            {
                Console.WriteLine($"// covet-stats {name}: unavailable ({e.Message})");
            }
            source.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
        _covet.Clear();

        foreach (var source in _providerSources)
            source.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _providerSources.Clear();
        NpgsqlConnection.ClearAllPools();
        MySqlConnection.ClearAllPools();
        SqliteConnection.ClearAllPools();

        foreach (var path in _sqliteFiles)
        {
            foreach (var file in new[] { path, path + "-journal", path + "-wal", path + "-shm" })
            {
                try
                {
                    File.Delete(file);
                }
                catch (IOException)
                {
                    // Best effort: it is in the temp directory.
                }
            }
        }
        _sqliteFiles.Clear();
    }
}
