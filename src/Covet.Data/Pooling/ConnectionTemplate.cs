using System.Data.Common;
using Covet.Data.Providers;

namespace Covet.Data.Pooling;

/// <summary>
/// An unopened provider connection with the pool's connection string, for what a closed logical connection reports
/// (<c>Database</c>, <c>DataSource</c>, <c>ConnectionTimeout</c>), and the pool's default name, built without secrets.
/// </summary>
/// <remarks>Made on first use (a pool of a many-tenant application may never need it); a race makes one extra, dropped.</remarks>
internal sealed class ConnectionTemplate(DbProviderFactory factory, string providerConnectionString, DbDataSource? physicalSource)
{
    private DbConnection? _connection;
    private int _commandTimeout = -1; // -1: not asked yet; a race asks twice and gets the same answer

    /// <summary>What the provider's own connection gives a new command as its timeout (its default, or its connection string's).</summary>
    public int CommandTimeout(ProviderDialect dialect)
    {
        var timeout = Volatile.Read(ref _commandTimeout);
        if (timeout < 0)
        {
            using var probe = Create(); // not the shared template: creating a command may touch the connection's state
            Volatile.Write(ref _commandTimeout, timeout = dialect.CommandTimeoutOf(probe));
        }
        return timeout;
    }

    public DbConnection Connection => Volatile.Read(ref _connection) ?? Interlocked.CompareExchange(ref _connection, Create(), null) ?? _connection!;

    private DbConnection Create()
    {
        if (physicalSource is not null)
            return physicalSource.CreateConnection();
        var connection = factory.CreateConnection() ?? throw new ArgumentException($"{factory.GetType().Name}.CreateConnection() returned null.", nameof(factory));
        connection.ConnectionString = providerConnectionString;
        return connection;
    }

    /// <summary>A pool name built only from the data source, database and provider: never from the connection string's secrets.</summary>
    public string DescribeWithoutSecrets(ProviderDialect dialect)
    {
        string? dataSource = null, database = null;
        try
        {
            using var probe = Create(); // not kept: the template is made only if a closed connection is asked for metadata
            dataSource = probe.DataSource;
            database = probe.Database;
        }
        catch (Exception)
        {
            // Some providers need an open connection for these.
        }
        return $"{dialect.Name}://{(string.IsNullOrEmpty(dataSource) ? "?" : dataSource)}/{database}";
    }
}
