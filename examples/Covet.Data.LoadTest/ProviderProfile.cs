using System.Data.Common;
using Microsoft.Data.Sqlite;
using MySqlConnector;
using Npgsql;

namespace Covet.Data.LoadTest;

/// <summary>Pool settings shared by Covet's pool and the provider's own, so both are sized alike.</summary>
public sealed record PoolSettings(int MaxPoolSize, int MinPoolSize, TimeSpan AcquireTimeout);

/// <summary>
/// What differs between providers: the factory, where the connection string comes from, how to build a Covet data source
/// and a data source over the provider's own pool with the same limits, how the provider reports an acquire timeout,
/// and which meter (if any) publishes its pool's connection counts.
/// </summary>
public abstract class ProviderProfile : IAsyncDisposable
{
    /// <summary>Pool name given to the provider's own pool, so its metrics can be told apart.</summary>
    public const string ProviderPoolName = "covet-loadtest-provider";

    /// <summary>Pool name given to Covet's pool.</summary>
    public const string CovetPoolName = "covet-loadtest";

    protected ProviderProfile(string connectionString)
    {
        ConnectionString = connectionString;
        // Covet's own keywords (Covet.MaxPoolSize=…) mean nothing to the provider's pool.
        var builder = new DbConnectionStringBuilder { ConnectionString = connectionString };
        var covetKeys = builder.Keys.Cast<string>().Where(k => k.StartsWith(CovetConnectionStringKeywords.Prefix, StringComparison.OrdinalIgnoreCase)).ToList();
        foreach (var key in covetKeys)
            builder.Remove(key);
        ProviderConnectionString = covetKeys.Count == 0 ? connectionString : builder.ConnectionString;
    }

    /// <summary>Short name: sqlite, postgres, mysql.</summary>
    public abstract string Name { get; }

    /// <summary>How the provider's own pool is called in the report.</summary>
    public abstract string ProviderPoolLabel { get; }

    /// <summary>The provider's factory, wrapped by Covet.</summary>
    public abstract DbProviderFactory Factory { get; }

    /// <summary>The connection string as given (it may hold Covet keywords such as <c>Covet.PrePing=false</c>).</summary>
    public string ConnectionString { get; }

    /// <summary>The connection string without Covet keywords, for the provider's own pool.</summary>
    public string ProviderConnectionString { get; }

    /// <summary>Extra Covet settings as connection-string keywords without the prefix (<c>LeakDetectionThreshold=0;PrePing=false</c>), from <c>--covet-options</c>.</summary>
    public string? CovetOptions { get; init; }

    /// <summary>The connection string without its password, for reports.</summary>
    public string DisplayConnectionString
    {
        get
        {
            var builder = new DbConnectionStringBuilder { ConnectionString = ConnectionString };
            foreach (var key in builder.Keys.Cast<string>().ToList())
            {
                if (key.Replace(" ", "", StringComparison.Ordinal) is { } k &&
                    (k.Equals("password", StringComparison.OrdinalIgnoreCase) || k.Equals("pwd", StringComparison.OrdinalIgnoreCase)))
                    builder[key] = "***";
            }
            return builder.ConnectionString;
        }
    }

    /// <summary>False when the provider's pool has no upper bound (its callers never wait).</summary>
    public virtual bool ProviderPoolHasMaximum => true;

    /// <summary>Caveats of the comparison on this provider, printed with the report.</summary>
    public virtual IEnumerable<string> Notes => [];

    /// <summary>The meter and instrument that publish the provider pool's connection counts, if any.</summary>
    public virtual (string Meter, string Instrument, string PoolNameTag, string StateTag)? ProviderPoolMeter => null;

    /// <summary>Covet's pool over this provider.</summary>
    public CovetDataSource CreateCovet(PoolSettings settings) =>
        CovetDataSource.Create(Factory, CovetConnectionString, new CovetPoolOptions
        {
            MaxPoolSize = settings.MaxPoolSize,
            MinPoolSize = settings.MinPoolSize,
            AcquireTimeout = settings.AcquireTimeout,
            PoolName = CovetPoolName,
        });

    /// <summary>The connection string given to Covet: the user's plus <see cref="CovetOptions"/> as <c>Covet.</c> keywords.</summary>
    public string CovetConnectionString
    {
        get
        {
            if (string.IsNullOrWhiteSpace(CovetOptions))
                return ConnectionString;
            var builder = new DbConnectionStringBuilder { ConnectionString = ConnectionString };
            var extra = new DbConnectionStringBuilder { ConnectionString = CovetOptions };
            foreach (var key in extra.Keys.Cast<string>())
            {
                var name = key.StartsWith(CovetConnectionStringKeywords.Prefix, StringComparison.OrdinalIgnoreCase) ? key : CovetConnectionStringKeywords.Prefix + key;
                builder[name] = extra[key];
            }
            return builder.ConnectionString;
        }
    }

    /// <summary>A data source over the provider's own pool, with the same maximum, minimum and acquire timeout where the provider has them.</summary>
    public abstract DbDataSource CreateProviderPool(PoolSettings settings);

    /// <summary>Runs after a provider data source was disposed (e.g. to empty a process-wide pool).</summary>
    public virtual void AfterProviderPoolDisposed()
    {
    }

    /// <summary>Whether <paramref name="exception"/> means "no connection became free in time" rather than a real failure.</summary>
    public virtual bool IsAcquireTimeout(Exception exception) =>
        exception is CovetPoolExhaustedException or TimeoutException || exception.InnerException is TimeoutException;

    /// <summary>Checks the database answers before any load is put on it.</summary>
    public async Task CheckReachableAsync(CancellationToken cancellationToken)
    {
        await using var connection = Factory.CreateConnection()!;
        connection.ConnectionString = ProviderConnectionString;
        await connection.OpenAsync(cancellationToken);
    }

    /// <summary>The profile for <paramref name="settings"/>; for SQLite without a connection string, creates the temporary database.</summary>
    /// <exception cref="ArgumentException">No connection string was given or found in the environment.</exception>
    public static ProviderProfile Create(LoadTestSettings settings) => settings.Provider switch
    {
        ProviderKind.Postgres => new PostgresProfile(settings.ConnectionString ?? FromEnvironment("COVET_TEST_PG", "postgres")) { CovetOptions = settings.CovetOptions },
        ProviderKind.MySql => new MySqlProfile(settings.ConnectionString ?? FromEnvironment("COVET_TEST_MYSQL", "mysql")) { CovetOptions = settings.CovetOptions },
        _ => settings.ConnectionString is { } cs
            ? new SqliteProfile(cs, temporaryFile: null) { CovetOptions = settings.CovetOptions }
            : SqliteProfile.CreateTemporary(settings.CovetOptions),
    };

    private static string FromEnvironment(string variable, string provider) =>
        Environment.GetEnvironmentVariable(variable) is { Length: > 0 } value
            ? value
            : throw new ArgumentException($"--provider {provider} needs --connection \"...\" or the environment variable {variable}.");

    /// <inheritdoc />
    public virtual ValueTask DisposeAsync()
    {
        GC.SuppressFinalize(this);
        return ValueTask.CompletedTask;
    }

    private static int Seconds(TimeSpan t, int max) => (int)Math.Clamp(Math.Ceiling(t.TotalSeconds), 1, max);

    private sealed class PostgresProfile(string connectionString) : ProviderProfile(connectionString)
    {
        public override string Name => "postgres";
        public override string ProviderPoolLabel => "Npgsql pool";
        public override DbProviderFactory Factory => NpgsqlFactory.Instance;

        public override (string, string, string, string)? ProviderPoolMeter =>
            ("Npgsql", "db.client.connection.count", "db.client.connection.pool.name", "db.client.connection.state");

        public override IEnumerable<string> Notes =>
        [
            "Npgsql's 'Timeout' is both the connect timeout and the pool wait; it is set to --acquire-timeout (at most 1024 s).",
        ];

        public override DbDataSource CreateProviderPool(PoolSettings settings)
        {
            var builder = new NpgsqlDataSourceBuilder(ProviderConnectionString) { Name = ProviderPoolName };
            builder.ConnectionStringBuilder.Pooling = true;
            builder.ConnectionStringBuilder.MaxPoolSize = settings.MaxPoolSize;
            builder.ConnectionStringBuilder.MinPoolSize = settings.MinPoolSize;
            builder.ConnectionStringBuilder.Timeout = Seconds(settings.AcquireTimeout, 1024);
            return builder.Build();
        }

        public override bool IsAcquireTimeout(Exception exception) =>
            base.IsAcquireTimeout(exception) ||
            (exception is NpgsqlException && exception.Message.Contains("pool has been exhausted", StringComparison.OrdinalIgnoreCase));
    }

    private sealed class MySqlProfile(string connectionString) : ProviderProfile(connectionString)
    {
        public override string Name => "mysql";
        public override string ProviderPoolLabel => "MySqlConnector pool";
        public override DbProviderFactory Factory => MySqlConnectorFactory.Instance;

        public override (string, string, string, string)? ProviderPoolMeter =>
            ("MySqlConnector", "db.client.connections.usage", "pool.name", "state");

        public override IEnumerable<string> Notes =>
        [
            "MySqlConnector's 'Connection Timeout' is both the connect timeout and the pool wait; it is set to --acquire-timeout.",
        ];

        public override DbDataSource CreateProviderPool(PoolSettings settings)
        {
            var csb = new MySqlConnectionStringBuilder(ProviderConnectionString)
            {
                Pooling = true,
                MaximumPoolSize = (uint)settings.MaxPoolSize,
                MinimumPoolSize = (uint)settings.MinPoolSize,
                ConnectionTimeout = (uint)Seconds(settings.AcquireTimeout, int.MaxValue),
            };
            return new MySqlDataSourceBuilder(csb.ConnectionString).UseName(ProviderPoolName).Build();
        }

        public override bool IsAcquireTimeout(Exception exception) =>
            base.IsAcquireTimeout(exception) ||
            (exception is MySqlException && exception.Message.Contains("pooled connections are in use", StringComparison.OrdinalIgnoreCase));
    }

    private sealed class SqliteProfile(string connectionString, string? temporaryFile) : ProviderProfile(connectionString)
    {
        public override string Name => "sqlite";
        public override string ProviderPoolLabel => "Microsoft.Data.Sqlite pool";
        public override DbProviderFactory Factory => SqliteFactory.Instance;

        // Microsoft.Data.Sqlite pools by connection string with no maximum and no waiting: every Open beyond the idle
        // connections opens a new one, and its OpenAsync and ExecuteAsync complete synchronously.
        public override bool ProviderPoolHasMaximum => false;

        public override IEnumerable<string> Notes =>
        [
            "Microsoft.Data.Sqlite's pool has no maximum: callers never wait, it opens as many connections as there are concurrent callers.",
            "Microsoft.Data.Sqlite runs its async methods synchronously, so each 'async' operation holds a thread for its whole duration.",
        ];

        public static SqliteProfile CreateTemporary(string? covetOptions)
        {
            var file = Path.Combine(Path.GetTempPath(), $"covet-loadtest-{Guid.NewGuid():N}.db");
            var cs = new SqliteConnectionStringBuilder { DataSource = file, Mode = SqliteOpenMode.ReadWriteCreate }.ConnectionString;
            using (var connection = new SqliteConnection(cs + ";Pooling=False"))
            {
                connection.Open();
                using var command = connection.CreateCommand();
                command.CommandText = "PRAGMA journal_mode=WAL; CREATE TABLE IF NOT EXISTS loadtest(id INTEGER PRIMARY KEY);";
                command.ExecuteNonQuery();
            }
            return new SqliteProfile(cs, file) { CovetOptions = covetOptions };
        }

        public override DbDataSource CreateProviderPool(PoolSettings settings) =>
            SqliteFactory.Instance.CreateDataSource(new SqliteConnectionStringBuilder(ProviderConnectionString) { Pooling = true }.ConnectionString);

        public override void AfterProviderPoolDisposed() => SqliteConnection.ClearAllPools();

        public override async ValueTask DisposeAsync()
        {
            SqliteConnection.ClearAllPools();
            if (temporaryFile is not null)
            {
                foreach (var file in new[] { temporaryFile, temporaryFile + "-wal", temporaryFile + "-shm", temporaryFile + "-journal" })
                {
                    try
                    {
                        File.Delete(file);
                    }
                    catch (IOException)
                    {
                        // Still open somewhere; the OS temp cleaner will get it.
                    }
                }
            }
            await base.DisposeAsync();
        }
    }
}
