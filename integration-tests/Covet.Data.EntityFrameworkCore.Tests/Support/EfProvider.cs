using System.Collections.Concurrent;
using System.Data.Common;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Covet.Data.EntityFrameworkCore.Tests.Model;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Storage;
using MySql.Data.MySqlClient;
using Npgsql;

namespace Covet.Data.EntityFrameworkCore.Tests;

public enum ProviderKind
{
    Postgres,
    Sqlite,
    MySql,
}

/// <summary>
/// One EF Core provider and a database of its own for one test (unique name or file; created by the test through EF,
/// dropped on dispose), with what provider-neutral rows need: the provider's <c>Use*</c>, the server's view of the
/// test's sessions, and a way to kill them.
/// </summary>
internal abstract class EfProvider : IAsyncDisposable
{
    // Physical connections EF was given while borrowed (ConnectionOpened sees the provider's own connection).
    private readonly ConcurrentDictionary<DbConnection, byte> _physicalConnections = new();

    protected EfProvider(string label)
    {
        var clean = new string(label.ToLowerInvariant().Where(char.IsAsciiLetterOrDigit).ToArray());
        DatabaseName = $"covet_ef_{(clean.Length > 24 ? clean[..24] : clean)}_{Guid.NewGuid().ToString("N")[..8]}";
        Recorder = new PhysicalConnectionRecorder(this);
    }

    public abstract ProviderKind Kind { get; }

    /// <summary>This test's database (or SQLite file name stem).</summary>
    public string DatabaseName { get; }

    /// <summary>The EF connection string of this test's database.</summary>
    public abstract string ConnectionString { get; }

    /// <summary>Whether EF enlists this provider in System.Transactions (EF Core SQLite does not).</summary>
    public virtual bool SupportsAmbientTransactions => true;

    /// <summary>A quoted identifier in this provider's SQL.</summary>
    public virtual string Q(string identifier) => $"\"{identifier}\"";

    /// <summary>SQL that sleeps about <paramref name="seconds"/> on the server, returning one row.</summary>
    public abstract string SleepSql(double seconds);

    /// <summary>The provider's <c>Use*</c> for this test's database.</summary>
    public abstract DbContextOptionsBuilder UseProvider(DbContextOptionsBuilder builder, bool retryOnFailure = false);

    /// <summary>The provider's <c>Use*</c> with a connection object the application owns.</summary>
    public abstract DbContextOptionsBuilder UseProvider(DbContextOptionsBuilder builder, DbConnection connection);

    /// <summary>A new, closed provider connection to this test's database.</summary>
    public abstract DbConnection CreateProviderConnection();

    /// <summary>The server's id of the session the context's connection is on (SQLite: the physical connection object).</summary>
    public abstract Task<object> SessionIdAsync(DbContext context);

    /// <summary>Connections the server has open to this test's database, or null without a server (SQLite).</summary>
    public abstract Task<int?> ServerConnectionsAsync();

    /// <summary>Kills every session of this test's database server-side (SQLite: closes every physical connection under Covet).</summary>
    public abstract Task KillAllSessionsAsync();

    /// <summary>Kills the session of the context's open connection from a separate plain connection (SQLite: closes it underneath).</summary>
    public abstract Task KillSessionAsync(DbContext context);

    protected IReadOnlyCollection<DbConnection> PhysicalConnections => _physicalConnections.Keys.ToList();

    /// <summary>Records the provider connections EF is given (the application's interceptors see them in ConnectionOpened).</summary>
    public IInterceptor Recorder { get; }

    /// <summary>Options for <typeparamref name="TContext"/>: the provider, then <c>UseCovetPool</c> (unless <paramref name="covet"/> is false).</summary>
    public DbContextOptions<TContext> Options<TContext>(
        Action<CovetPoolOptions>? pool = null, bool retryOnFailure = false, Action<DbContextOptionsBuilder>? configure = null, bool covet = true)
        where TContext : DbContext
    {
        var builder = new DbContextOptionsBuilder<TContext>();
        Configure(builder, pool, retryOnFailure, configure, covet);
        return builder.Options;
    }

    /// <summary>The same configuration on a builder (for AddDbContextPool).</summary>
    public void Configure(DbContextOptionsBuilder builder, Action<CovetPoolOptions>? pool = null, bool retryOnFailure = false,
        Action<DbContextOptionsBuilder>? configure = null, bool covet = true)
    {
        UseProvider(builder, retryOnFailure);
        builder.AddInterceptors(Recorder);
        if (covet)
            builder.UseCovetPool(o =>
            {
                o.PoolName = DatabaseName;
                o.AcquireTimeout = TimeSpan.FromSeconds(20);
                pool?.Invoke(o);
            });
        configure?.Invoke(builder);
    }

    public BlogContext Blogs(Action<CovetPoolOptions>? pool = null, bool retryOnFailure = false) => new(Options<BlogContext>(pool, retryOnFailure));

    public abstract ValueTask DisposeAsync();

    public static EfProvider Create(ProviderKind kind, string label) => kind switch
    {
        ProviderKind.Postgres => new PostgresProvider(label),
        ProviderKind.Sqlite => new SqliteProvider(label),
        ProviderKind.MySql => new MySqlProvider(label),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    private sealed class PhysicalConnectionRecorder(EfProvider provider) : DbConnectionInterceptor
    {
        public override void ConnectionOpened(DbConnection connection, ConnectionEndEventData eventData) =>
            provider._physicalConnections.TryAdd(connection, 0);

        public override Task ConnectionOpenedAsync(DbConnection connection, ConnectionEndEventData eventData, CancellationToken cancellationToken = default)
        {
            provider._physicalConnections.TryAdd(connection, 0);
            return Task.CompletedTask;
        }
    }

    private sealed class PostgresProvider : EfProvider
    {
        public PostgresProvider(string label) : base(label)
        {
            ApplicationName = "cv-ef-" + DatabaseName[9..];
            ConnectionString = new NpgsqlConnectionStringBuilder(PgServer.BaseConnectionString)
            {
                Database = DatabaseName,
                ApplicationName = ApplicationName,
            }.ConnectionString;
        }

        public override ProviderKind Kind => ProviderKind.Postgres;
        public string ApplicationName { get; }
        public override string ConnectionString { get; }
        public override string SleepSql(double seconds) => $"select pg_sleep({seconds.ToString(System.Globalization.CultureInfo.InvariantCulture)})";

        public override DbContextOptionsBuilder UseProvider(DbContextOptionsBuilder builder, bool retryOnFailure = false) =>
            builder.UseNpgsql(ConnectionString, o =>
            {
                if (retryOnFailure)
                    o.EnableRetryOnFailure(5, TimeSpan.FromMilliseconds(200), ["57P01"]);
            });

        public override DbContextOptionsBuilder UseProvider(DbContextOptionsBuilder builder, DbConnection connection) =>
            builder.UseNpgsql(connection);

        public override DbConnection CreateProviderConnection() => new NpgsqlConnection(ConnectionString);

        public override async Task<object> SessionIdAsync(DbContext context) =>
            await context.Database.SqlQueryRaw<int>("select pg_backend_pid() as \"Value\"").SingleAsync();

        public override async Task<int?> ServerConnectionsAsync() => (await PgServer.PidsAsync(DatabaseName, ApplicationName)).Count;

        public override async Task KillAllSessionsAsync() => await PgServer.TerminateAsync(await PgServer.PidsAsync(DatabaseName, ApplicationName));

        public override async Task KillSessionAsync(DbContext context) => await PgServer.TerminateAsync([(int)await SessionIdAsync(context)]);

        public override async ValueTask DisposeAsync()
        {
            CovetPools.Clear(DatabaseName);
            NpgsqlConnection.ClearAllPools();
            await PgServer.DropDatabaseAsync(DatabaseName);
        }
    }

    private sealed class MySqlProvider : EfProvider
    {
        public MySqlProvider(string label) : base(label) =>
            ConnectionString = new MySqlConnectionStringBuilder(MySqlServer.BaseConnectionString) { Database = DatabaseName }.ConnectionString;

        public override ProviderKind Kind => ProviderKind.MySql;
        public override string ConnectionString { get; }
        public override string Q(string identifier) => $"`{identifier}`";
        public override string SleepSql(double seconds) => $"select sleep({seconds.ToString(System.Globalization.CultureInfo.InvariantCulture)})";

        public override DbContextOptionsBuilder UseProvider(DbContextOptionsBuilder builder, bool retryOnFailure = false) =>
            builder.UseMySQL(ConnectionString, o =>
            {
                // MySql.Data reports a lost connection as MySqlException Number 0 with IsTransient false, so an app on
                // MySql.Data adds 0 for the strategy to retry it (the same with or without Covet).
                if (retryOnFailure)
                    o.EnableRetryOnFailure(5, TimeSpan.FromMilliseconds(200), [0]);
            });

        public override DbContextOptionsBuilder UseProvider(DbContextOptionsBuilder builder, DbConnection connection) =>
            builder.UseMySQL(connection);

        public override DbConnection CreateProviderConnection() => new MySqlConnection(ConnectionString);

        public override async Task<object> SessionIdAsync(DbContext context) =>
            await context.Database.SqlQueryRaw<long>("select connection_id() as Value").SingleAsync();

        public override async Task<int?> ServerConnectionsAsync() => (await MySqlServer.SessionIdsAsync(DatabaseName)).Count;

        public override async Task KillAllSessionsAsync() => await MySqlServer.KillAsync(await MySqlServer.SessionIdsAsync(DatabaseName));

        public override async Task KillSessionAsync(DbContext context) => await MySqlServer.KillAsync([(long)await SessionIdAsync(context)]);

        public override async ValueTask DisposeAsync()
        {
            CovetPools.Clear(DatabaseName);
            MySqlConnection.ClearAllPools();
            await MySqlServer.DropDatabaseAsync(DatabaseName);
        }
    }

    private sealed class SqliteProvider : EfProvider
    {
        private readonly string _path;

        public SqliteProvider(string label) : base(label)
        {
            _path = Path.Combine(Path.GetTempPath(), DatabaseName + ".db");
            ConnectionString = $"Data Source={_path}";
        }

        public override ProviderKind Kind => ProviderKind.Sqlite;
        public override string ConnectionString { get; }
        public override bool SupportsAmbientTransactions => false;
        public string FilePath => _path;

        // No sleep function in SQLite: a recursive CTE that takes a few milliseconds.
        public override string SleepSql(double seconds) =>
            "with recursive c(x) as (select 1 union all select x + 1 from c where x < 200000) select count(*) from c";

        public override DbContextOptionsBuilder UseProvider(DbContextOptionsBuilder builder, bool retryOnFailure = false) =>
            retryOnFailure
                ? builder.UseSqlite(ConnectionString, o => o.ExecutionStrategy(d => new RetryAnyFailureStrategy(d)))
                : builder.UseSqlite(ConnectionString);

        public override DbContextOptionsBuilder UseProvider(DbContextOptionsBuilder builder, DbConnection connection) =>
            builder.UseSqlite(connection);

        public override DbConnection CreateProviderConnection() => new SqliteConnection(ConnectionString);

        public override Task<object> SessionIdAsync(DbContext context) => Task.FromResult<object>(context.Database.GetDbConnection());

        public override Task<int?> ServerConnectionsAsync() => Task.FromResult<int?>(null);

        public override Task KillAllSessionsAsync()
        {
            foreach (var connection in PhysicalConnections)
                connection.Close();
            return Task.CompletedTask;
        }

        public override Task KillSessionAsync(DbContext context)
        {
            context.Database.GetDbConnection().Close();
            return Task.CompletedTask;
        }

        public override ValueTask DisposeAsync()
        {
            CovetPools.Clear(DatabaseName);
            SqliteConnection.ClearAllPools();
            foreach (var file in Directory.GetFiles(Path.GetDirectoryName(_path)!, Path.GetFileName(_path) + "*"))
            {
                try
                {
                    File.Delete(file);
                }
                catch (IOException)
                {
                    // still open by a pooled connection: a temp file, left to the OS
                }
            }
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>EF Core SQLite has no retrying strategy: one that retries any failure, to drive the same retry path.</summary>
    private sealed class RetryAnyFailureStrategy(ExecutionStrategyDependencies dependencies)
        : ExecutionStrategy(dependencies, maxRetryCount: 5, maxRetryDelay: TimeSpan.FromMilliseconds(100))
    {
        protected override bool ShouldRetryOn(Exception exception) => exception is SqliteException or InvalidOperationException;
    }
}
