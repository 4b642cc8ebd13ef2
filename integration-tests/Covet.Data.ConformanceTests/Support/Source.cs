using System.Data.Common;
using Covet.Data.Pooling;
using MySqlConnector;
using Npgsql;

namespace Covet.Data.ConformanceTests;

/// <summary>
/// Where one run of a scenario gets its connections: the provider's own pool, or Covet's, through a factory or a data
/// source. Every run has pools of its own (a unique application name or file), so runs never see each other.
/// </summary>
internal sealed class Source : IAsyncDisposable
{
    private DbDataSource? _dataSource;
    private readonly List<string> _tables = [];

    public Source(TargetKind target, PathKind path, bool covet, int poolSize)
    {
        Target = target;
        Path = path;
        IsCovet = covet;
        RunId = Guid.NewGuid().ToString("N")[..12];
        File = target == TargetKind.SqliteFile ? System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"covet-cf-{RunId}.db") : null;
        ProviderFactory = Targets.Factory(target);
        ProviderConnectionString = Targets.Provider(target, RunId, File, poolSize);
        Factory = covet ? new CovetProviderFactory(ProviderFactory) : ProviderFactory;
        ConnectionString = covet ? ProviderConnectionString + Targets.CovetKeywords(poolSize) : ProviderConnectionString;
        if (path == PathKind.DataSource)
            _ = DataSource;
    }

    public TargetKind Target { get; }
    public PathKind Path { get; }
    public bool IsCovet { get; }
    public string RunId { get; }
    public string? File { get; }

    /// <summary>The provider's own factory (also on Covet runs).</summary>
    public DbProviderFactory ProviderFactory { get; }

    /// <summary>The factory users would hold: the provider's, or a Covet factory over it.</summary>
    public DbProviderFactory Factory { get; }

    public string ProviderConnectionString { get; }

    /// <summary>The string users would set: Covet's keywords (pool size, short acquire timeout) included on Covet runs.</summary>
    public string ConnectionString { get; }

    /// <summary>The data source of this run: the provider's (<c>CreateDataSource</c>) or a <see cref="CovetDataSource"/>.</summary>
    public DbDataSource DataSource => _dataSource ??= IsCovet
        ? CovetDataSource.Create(ProviderFactory, ConnectionString)
        : ProviderFactory.CreateDataSource(ConnectionString);

    /// <summary>A closed connection, made the way this row's path makes them.</summary>
    public DbConnection New()
    {
        if (Path == PathKind.DataSource)
            return DataSource.CreateConnection();
        var connection = Factory.CreateConnection()!;
        connection.ConnectionString = ConnectionString;
        return connection;
    }

    /// <summary>A closed connection with another connection string of the same kind (for connection-string scenarios).</summary>
    public DbConnection NewWith(string connectionString)
    {
        var connection = Factory.CreateConnection()!;
        connection.ConnectionString = connectionString;
        return connection;
    }

    /// <summary>A table name unique to this run; dropped when the run ends.</summary>
    public string Table(string name)
    {
        var table = $"{name}_{RunId}";
        _tables.Add(table);
        return table;
    }

    public async ValueTask DisposeAsync()
    {
        if (_dataSource is not null)
        {
            try
            {
                await _dataSource.DisposeAsync();
            }
            catch (Exception e) when (e is DbException or InvalidOperationException)
            {
                // a scenario left the data source in a state its dispose complains about: cleanup only
            }
        }
        if (IsCovet)
        {
            foreach (var pool in CovetPoolRegistry.Snapshot().Where(p => ReferenceEquals(p.OwnerFactory, Factory)))
                pool.Dispose();
        }
        Targets.ClearProviderPools(Target);
        DropTables();
        if (File is not null)
        {
            foreach (var file in Directory.GetFiles(System.IO.Path.GetDirectoryName(File)!, System.IO.Path.GetFileName(File) + "*"))
            {
                try { System.IO.File.Delete(file); } catch (IOException) { }
            }
        }
    }

    private void DropTables()
    {
        if (_tables.Count == 0 || Target.IsSqlite())
            return;
        DbConnection admin = Target == TargetKind.Pg ? new NpgsqlConnection(Targets.Admin(Target)) : new MySqlConnection(Targets.Admin(Target));
        using (admin)
        {
            admin.Open();
            foreach (var table in _tables)
            {
                using var command = admin.CreateCommand();
                command.CommandText = $"DROP TABLE IF EXISTS {table}";
                command.ExecuteNonQuery();
            }
        }
    }
}
