using System.Collections.Concurrent;
using System.Data.Common;
using Covet.Data.Pooling;

namespace Covet.Data;

/// <summary>
/// A <see cref="DbProviderFactory"/> that decorates any provider's factory: connections it creates borrow from Covet's
/// pools. Register it with <c>DbProviderFactories.RegisterFactory("Covet.Npgsql", factory)</c> for config-driven apps.
/// </summary>
/// <remarks>
/// The factory keeps one pool per distinct connection string, Covet keywords included, as the providers key their pools
/// by the whole string: two strings that differ only in Covet keywords get two pools, each with its own settings.
/// </remarks>
public sealed class CovetProviderFactory : DbProviderFactory
{
    // Connection string as users pass it (Covet keywords included) → its own pool: the lookup on every Open is one
    // dictionary hit. A string that is invalid never gets a pool, so it is rejected every time.
    private readonly ConcurrentDictionary<string, CovetPool> _poolsByRawString = new();
    private readonly Lock _createLock = new();

    // Strings already validated at set time (bounded: a process that builds endless distinct strings validates each again).
    private readonly ConcurrentDictionary<string, byte> _validated = new();
    private const int MaxValidatedStrings = 1024;

    /// <summary>Decorates <paramref name="inner"/>; <paramref name="options"/> are the defaults that connection-string keywords override.</summary>
    /// <exception cref="CovetConfigurationException">An option is out of range.</exception>
    public CovetProviderFactory(DbProviderFactory inner, CovetPoolOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(inner);
        if (inner is CovetProviderFactory)
            throw new ArgumentException("Covet factories cannot be stacked: pass the provider's own factory.", nameof(inner));
        Inner = inner;
        Options = (options ?? new CovetPoolOptions()).Clone();
        Options.Validate();
        DefaultCommandTimeoutSeconds = Options.DefaultCommandTimeout is { } timeout ? (int)Math.Ceiling(timeout.TotalSeconds) : null;
    }

    /// <summary>The provider's own factory.</summary>
    public DbProviderFactory Inner { get; }

    /// <summary>Default options of this factory's pools (a copy: later changes to the object passed in have no effect).</summary>
    public CovetPoolOptions Options { get; }

    internal int? DefaultCommandTimeoutSeconds { get; }

    /// <summary>Creates a closed <see cref="CovetDbConnection"/>.</summary>
    public override DbConnection CreateConnection() => Providers.ProviderDialect.For(Inner).CreateConnection(this, null);

    /// <summary>Creates a command not yet bound to a connection; it wraps the provider's own command.</summary>
    public override DbCommand CreateCommand() =>
        new CovetDbCommand(null, Inner.CreateCommand() ?? throw new NotSupportedException("The provider cannot create commands."), DefaultCommandTimeoutSeconds);

    /// <summary>The provider's own parameter.</summary>
    public override DbParameter? CreateParameter() => Inner.CreateParameter();

    /// <summary>The provider's own connection-string builder. Covet keywords (<c>Covet.*</c>) are not among its keywords.</summary>
    public override DbConnectionStringBuilder? CreateConnectionStringBuilder() => Inner.CreateConnectionStringBuilder();

    /// <inheritdoc />
    public override bool CanCreateBatch => Inner.CanCreateBatch;

    /// <inheritdoc />
    public override DbBatch CreateBatch() => new CovetDbBatch(null, Inner.CreateBatch(), DefaultCommandTimeoutSeconds);

    /// <inheritdoc />
    public override DbBatchCommand CreateBatchCommand() => Inner.CreateBatchCommand();

    /// <inheritdoc />
    public override bool CanCreateCommandBuilder => Inner.CanCreateCommandBuilder;

    /// <inheritdoc />
    public override DbCommandBuilder? CreateCommandBuilder() => Inner.CreateCommandBuilder();

    /// <inheritdoc />
    public override bool CanCreateDataAdapter => Inner.CanCreateDataAdapter;

    /// <inheritdoc />
    public override DbDataAdapter? CreateDataAdapter() => Inner.CreateDataAdapter();

    /// <summary>A <see cref="CovetDataSource"/> with its own pool for <paramref name="connectionString"/>.</summary>
    public override DbDataSource CreateDataSource(string connectionString) => new CovetDataSource(this, connectionString);

    /// <summary>Statistics of every pool this factory created.</summary>
    public IReadOnlyList<CovetPoolStatistics> GetStatistics() => _poolsByRawString.Values.Distinct().Select(PoolIdentity.StatisticsOf).ToList();

    /// <summary>Closes the idle connections of the pool for <paramref name="connectionString"/>; borrowed ones close when returned.</summary>
    public void ClearPool(string connectionString)
    {
        if (_poolsByRawString.TryGetValue(connectionString, out var pool))
            pool.Clear();
    }

    /// <summary>Closes the idle connections of every pool of this factory; borrowed ones close when returned.</summary>
    public void ClearAllPools()
    {
        foreach (var pool in _poolsByRawString.Values.Distinct())
            pool.Clear();
    }

    internal CovetPool GetPool(string connectionString)
    {
        if (_poolsByRawString.TryGetValue(connectionString, out var pool) && !pool.IsDisposed)
            return pool;
        lock (_createLock)
        {
            if (_poolsByRawString.TryGetValue(connectionString, out pool) && !pool.IsDisposed)
                return pool;
            var (providerString, options) = CovetConnectionStringKeywords.Split(connectionString, Options);
            pool = new CovetPool(Inner, providerString, options, this, connectionString);
            _poolsByRawString[connectionString] = pool;
            return pool;
        }
    }

    /// <summary>
    /// Checks a connection string when it is set, as the provider checks its own: Covet keywords and their values (a
    /// <see cref="CovetConfigurationException"/> naming the keyword), then the provider's part on an unopened provider
    /// connection, so a provider that validates at set time throws its own exception now.
    /// </summary>
    internal void Validate(string connectionString)
    {
        if (_poolsByRawString.ContainsKey(connectionString) || _validated.ContainsKey(connectionString))
            return;
        var (providerString, options) = CovetConnectionStringKeywords.Split(connectionString, Options);
        options.Validate();
        using (var probe = Inner.CreateConnection())
        {
            if (probe is not null)
                probe.ConnectionString = providerString;
        }
        if (_validated.Count < MaxValidatedStrings)
            _validated.TryAdd(connectionString, 0);
    }
}
