using System.Data.Common;
using Covet.Data.Pooling;

namespace Covet.Data;

/// <summary>
/// A <see cref="DbDataSource"/> with its own Covet pool: the modern entry point. Disposing it closes every idle physical
/// connection at once and every borrowed one when it comes back.
/// </summary>
public sealed class CovetDataSource : DbDataSource
{
    private readonly CovetPool _pool;

    internal CovetDataSource(CovetProviderFactory factory, string connectionString)
    {
        Factory = factory;
        var (providerString, options) = CovetConnectionStringKeywords.Split(connectionString, factory.Options);
        _pool = new CovetPool(factory.Inner, providerString, options, factory, connectionString);
    }

    private CovetDataSource(CovetProviderFactory factory, DbDataSource physicalConnections, CovetPoolOptions options)
    {
        Factory = factory;
        _pool = new CovetPool(factory.Inner, physicalConnections.ConnectionString, options, factory, physicalConnections.ConnectionString, physicalConnections);
    }

    /// <summary>
    /// Creates a data source whose physical connections come from the provider's own <see cref="DbDataSource"/>, so what is
    /// configured there (Npgsql's <c>MapEnum</c>, type plugins, connection callbacks) applies to every pooled connection.
    /// </summary>
    /// <param name="physicalConnections">The provider's data source, built with its own pooling off (<c>Pooling=false</c>), so pools are not stacked.</param>
    /// <param name="options">Pool settings (<see cref="CovetPoolOptions.PasswordProvider"/> is not used: the data source owns authentication).</param>
    /// <exception cref="CovetConfigurationException">The data source pools its connections, or a setting is wrong.</exception>
    public static CovetDataSource Create(DbDataSource physicalConnections, CovetPoolOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(physicalConnections);
        using var probe = physicalConnections.CreateConnection();
        var provider = DbProviderFactories.GetFactory(probe)
            ?? throw new CovetConfigurationException(nameof(physicalConnections), "The data source's connections do not name their DbProviderFactory.");
        var builder = provider.CreateConnectionStringBuilder() ?? new DbConnectionStringBuilder();
        builder.ConnectionString = physicalConnections.ConnectionString;
        if (builder.TryGetValue("Pooling", out var pooling) && !string.Equals(Convert.ToString(pooling, System.Globalization.CultureInfo.InvariantCulture), "false", StringComparison.OrdinalIgnoreCase))
            throw new CovetConfigurationException(nameof(physicalConnections),
                "The provider's data source pools its connections (Pooling is not false): build it with Pooling=false so Covet's pool is the only one.");
        var factory = new CovetProviderFactory(provider, options);
        if (factory.Options.PasswordProvider is not null)
            throw new CovetConfigurationException(nameof(CovetPoolOptions.PasswordProvider), "PasswordProvider cannot be used with a provider data source: configure authentication on the data source.");
        return new CovetDataSource(factory, physicalConnections, factory.Options.Clone());
    }

    /// <summary>Creates a data source over <paramref name="inner"/>'s provider.</summary>
    /// <param name="inner">The provider's own factory, e.g. <c>NpgsqlFactory.Instance</c>.</param>
    /// <param name="connectionString">The provider connection string, optionally with Covet keywords (<c>Covet.MaxPoolSize=50</c>).</param>
    /// <param name="options">Pool settings; connection-string keywords override them.</param>
    /// <exception cref="CovetConfigurationException">A setting or Covet keyword is wrong.</exception>
    public static CovetDataSource Create(DbProviderFactory inner, string connectionString, CovetPoolOptions? options = null) =>
        new(new CovetProviderFactory(inner, options), connectionString);

    /// <summary>The Covet factory of this data source's connections.</summary>
    public CovetProviderFactory Factory { get; }

    /// <inheritdoc />
    public override string ConnectionString => _pool.OriginalConnectionString;

    /// <summary>The pool's name in logs, metrics and errors (never contains a password).</summary>
    public string PoolName => _pool.Name;

    /// <summary>
    /// The settings in force (options with connection-string keywords applied, and any <see cref="Reconfigure"/> since), as a
    /// copy: changing it changes nothing until it is passed to <see cref="Reconfigure"/>.
    /// </summary>
    public CovetPoolOptions Options => _pool.Options.Clone();

    /// <summary>
    /// Applies new settings to the running pool without dropping a connection. A lowered <see cref="CovetPoolOptions.MaxPoolSize"/>
    /// closes surplus idle connections now and borrowed ones as they are returned; a raised one serves waiting callers at once;
    /// a raised <see cref="CovetPoolOptions.MinPoolSize"/> warms up in the background; a new <see cref="CovetPoolOptions.MaxLifetime"/>
    /// gives every connection a new expiry (with the spread); a new <see cref="CovetPoolOptions.AcquireTimeout"/> applies to opens that
    /// start afterwards; pre-ping, alive window, leak thresholds and stack-trace mode, breaker and auto-scaling settings apply from
    /// their next use. The change is logged with old and new values. Start from <see cref="Options"/> (a copy) and change what you need.
    /// </summary>
    /// <param name="options">The complete new settings (copied: later changes to the object have no effect).</param>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> is null.</exception>
    /// <exception cref="CovetConfigurationException">A setting is out of range, or one that cannot change on a running pool
    /// (<see cref="CovetPoolOptions.PoolName"/>, <see cref="CovetPoolOptions.LoggerFactory"/>, <see cref="CovetPoolOptions.TimeProvider"/>,
    /// <see cref="CovetPoolOptions.ResetSessionOnReturn"/>, <see cref="CovetPoolOptions.ResetQuery"/>) differs; the message names it.
    /// Nothing was changed.</exception>
    /// <exception cref="ObjectDisposedException">The data source was disposed.</exception>
    public void Reconfigure(CovetPoolOptions options) => _pool.Reconfiguration.Apply(options);

    internal CovetPool Pool => _pool;

    /// <summary>
    /// Something that lives as long as this data source and must stop first when it is disposed: Covet.Data.Extensions' subscription
    /// to configuration reloads (disposed before the pool, so a reload never reaches a disposed pool). Set once, right after creation.
    /// </summary>
    internal IDisposable? DisposedFirst { get; set; }

    /// <summary>A snapshot of the pool's counts, latencies, leaks and circuit state.</summary>
    public CovetPoolStatistics GetStatistics() => PoolIdentity.StatisticsOf(_pool);

    /// <summary>Closes every idle physical connection now; borrowed ones close when returned.</summary>
    public void Clear() => _pool.Clear();

    /// <summary>Whether the pool serves opens, is paused, or is draining (<see cref="CovetPoolState.Running"/> unless paused by hand).</summary>
    public CovetPoolState State => _pool.State;

    /// <summary>
    /// Pauses the pool: new opens wait (each still bounded by <see cref="CovetPoolOptions.AcquireTimeout"/>, then a
    /// <see cref="CovetPoolExhaustedException"/> whose message says the pool is paused), borrowed connections keep working
    /// and go back to the idle stack when returned, and the pool opens nothing in the background (no warm-up, health check
    /// or circuit probe). Does nothing when already paused or draining.
    /// </summary>
    /// <param name="cancellationToken">Checked before pausing.</param>
    /// <returns>A task that completes once the pool is paused: every open that starts afterwards waits.</returns>
    /// <exception cref="ObjectDisposedException">The data source was disposed.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled before the pool was paused.</exception>
    public Task PauseAsync(CancellationToken cancellationToken = default) => _pool.Pausing.PauseAsync(cancellationToken);

    /// <summary>
    /// Serves opens again after <see cref="PauseAsync"/> or <see cref="DrainAsync"/>: the callers waiting meanwhile get
    /// idle connections or free slots first, oldest first; after a drain they get freshly opened physical connections.
    /// Does nothing when the pool is running or disposed.
    /// </summary>
    public void Resume() => _pool.Pausing.Resume();

    /// <summary>
    /// Pauses the pool and closes all its physical connections: idle ones now, each borrowed one as it is returned, until
    /// none is left or <paramref name="timeout"/> passes (on the pool's <see cref="CovetPoolOptions.TimeProvider"/>).
    /// Afterwards the pool stays paused (<see cref="CovetPoolState.Paused"/>): stragglers returned later are closed too,
    /// and <see cref="Resume"/> opens fresh connections (after a failover, a credential rotation, a server upgrade).
    /// </summary>
    /// <param name="timeout">How long to wait for borrowed connections to come back; <see cref="TimeSpan.Zero"/> closes the idle ones and returns; <see cref="Timeout.InfiniteTimeSpan"/> waits for all.</param>
    /// <param name="cancellationToken">Stops waiting (the pool stays paused; connections still borrowed are closed when returned).</param>
    /// <returns>How many connections were closed, whether none is left, and the checkouts still borrowed with their stack traces.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeout"/> is negative (other than <see cref="Timeout.InfiniteTimeSpan"/>).</exception>
    /// <exception cref="ObjectDisposedException">The data source was disposed.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public Task<CovetDrainReport> DrainAsync(TimeSpan timeout, CancellationToken cancellationToken = default) => _pool.Pausing.DrainAsync(timeout, cancellationToken);

    /// <summary>Opens the circuit breaker by hand: acquires fail fast until <see cref="ResetCircuit"/> or a successful probe.</summary>
    public void TripCircuit() => _pool.Breaker.Trip();

    /// <summary>Closes the circuit breaker by hand.</summary>
    public void ResetCircuit() => _pool.Breaker.Reset();

    /// <summary>A new closed <see cref="CovetDbConnection"/>.</summary>
    public new CovetDbConnection CreateConnection() => (CovetDbConnection)CreateDbConnection();

    /// <inheritdoc />
    protected override DbConnection CreateDbConnection()
    {
        ObjectDisposedException.ThrowIf(_pool.IsDisposed, this);
        return _pool.Dialect.CreateConnection(Factory, _pool);
    }

    /// <summary>A batch that borrows a connection for each execution (see <see cref="DbDataSource.CreateBatch"/>).</summary>
    protected override DbBatch CreateDbBatch() => new CovetDataSourceBatch(CreateDbConnection());

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            DisposedFirst?.Dispose();
            _pool.Dispose();
        }
        base.Dispose(disposing);
    }

    /// <inheritdoc />
    protected override ValueTask DisposeAsyncCore()
    {
        DisposedFirst?.Dispose();
        return _pool.DisposeAsync();
    }
}
