using System.Data.Common;
using Dapper;
using Microsoft.Data.Sqlite;
using MySqlConnector;
using Npgsql;

namespace Covet.Data.IntegrationTests;

/// <summary>One Covet data source on one of the three providers, with what provider-neutral tests need to know about it.</summary>
internal abstract class PoolUnderTest : IDisposable
{
    public abstract CovetDataSource DataSource { get; }

    /// <summary>The provider's exception type, which Covet must let through unwrapped.</summary>
    public abstract Type ProviderExceptionType { get; }

    /// <summary>Whether the provider can enlist in System.Transactions.</summary>
    public virtual bool SupportsTransactionScope => true;

    /// <summary>Identity of the physical connection: the server's backend pid / connection id, or (SQLite) the provider object itself.</summary>
    public abstract Task<object> SessionIdAsync(CovetDbConnection connection);

    /// <summary>Whether there is a server that can count the pool's connections (not for SQLite).</summary>
    public bool HasServer => this is not SqlitePool;

    /// <summary>How many connections of this pool the server sees; null where there is no server (SQLite).</summary>
    public abstract Task<int>? ServerConnectionsAsync();

    public CovetPoolStatistics Stats => DataSource.GetStatistics();

    public abstract void Dispose();

    public static PoolUnderTest Postgres(string label, CovetPoolOptions? options = null) => new PostgresPool(new PgTestPool(label, options));

    public static PoolUnderTest MariaDb(CovetPoolOptions? options = null) => new MariaDbPool(new MySqlTestPool(options));

    public static PoolUnderTest Sqlite(string label, CovetPoolOptions? options = null) => new SqlitePool(label, options);

    private sealed class PostgresPool(PgTestPool pool) : PoolUnderTest
    {
        public override CovetDataSource DataSource => pool.DataSource;
        public override Type ProviderExceptionType => typeof(PostgresException);
        public override async Task<object> SessionIdAsync(CovetDbConnection connection) => await connection.ExecuteScalarAsync<int>("select pg_backend_pid()");
        public override Task<int>? ServerConnectionsAsync() => pool.ServerConnectionsAsync();
        public override void Dispose() => pool.Dispose();
    }

    private sealed class MariaDbPool(MySqlTestPool pool) : PoolUnderTest
    {
        public override CovetDataSource DataSource => pool.DataSource;
        public override Type ProviderExceptionType => typeof(MySqlException);
        public override async Task<object> SessionIdAsync(CovetDbConnection connection) => await connection.ExecuteScalarAsync<long>("select connection_id()");
        public override Task<int>? ServerConnectionsAsync() => pool.ServerConnectionsAsync();
        public override void Dispose() => pool.Dispose();
    }

    private sealed class SqlitePool : PoolUnderTest
    {
        private readonly SqliteFile _file;
        private readonly CovetDataSource _dataSource;

        public SqlitePool(string label, CovetPoolOptions? options)
        {
            _file = new SqliteFile(label);
            var effective = options ?? TestOptions.Default();
            effective.PoolName ??= "sqlite-" + label;
            // WAL so concurrent readers never see SQLITE_BUSY from each other.
            using (var setup = new SqliteConnection(_file.ConnectionString + ";Pooling=false"))
            {
                setup.Open();
                setup.Execute("pragma journal_mode=wal");
            }
            _dataSource = CovetDataSource.Create(SqliteFactory.Instance, _file.ConnectionString, effective);
        }

        public override CovetDataSource DataSource => _dataSource;
        public override Type ProviderExceptionType => typeof(SqliteException);
        public override bool SupportsTransactionScope => false;
        public override Task<object> SessionIdAsync(CovetDbConnection connection) => Task.FromResult<object>(connection.UnderlyingConnection);
        public override Task<int>? ServerConnectionsAsync() => null;

        public override void Dispose()
        {
            _dataSource.Dispose();
            _file.Dispose();
        }
    }
}

internal static class Sql
{
    /// <summary>A table name no other test uses.</summary>
    public static string UniqueTable(string prefix = "t") => $"{prefix}_{Guid.NewGuid():N}";

    public static void CreateRowsTable(this DbConnection connection, string table) =>
        connection.Execute($"create table {table} (id int primary key, name varchar(100) not null)");

    public static void DropTable(this DbConnection connection, string table) =>
        connection.Execute($"drop table if exists {table}");
}

/// <summary>Rows of the tables the tests create (settable properties: Dapper converts SQLite's Int64 ids).</summary>
public sealed class Row
{
    public int Id { get; set; }
    public string Name { get; set; } = "";
}
