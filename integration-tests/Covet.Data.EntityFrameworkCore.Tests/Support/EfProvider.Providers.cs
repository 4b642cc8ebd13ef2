using System.Data.Common;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using MySql.Data.MySqlClient;
using Npgsql;

namespace Covet.Data.EntityFrameworkCore.Tests;

/// <summary>The EF Core 10 providers: Npgsql's, EF Core SQLite and Oracle's MySql.EntityFrameworkCore (over MySql.Data).</summary>
internal abstract partial class EfProvider
{
    public static partial EfProvider Create(ProviderKind kind, string label) => kind switch
    {
        ProviderKind.Postgres => new PostgresProvider(label),
        ProviderKind.Sqlite => new SqliteProvider(label),
        ProviderKind.MySql => new MySqlProvider(label),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "not a provider of the EF Core 10 test project"),
    };

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
