using System.Collections.Concurrent;
using System.Data.Common;
using System.Globalization;
using System.Reflection;

namespace Covet.Data.EntityFrameworkCore.Internal;

/// <summary>
/// The Covet pools behind every <c>UseCovetPool</c> in the process: one factory per (provider factory, pool settings),
/// and one data source per (data source the application gave EF, pool settings). Pools over the data sources EF builds
/// itself belong to EF's internal service provider instead: <see cref="CovetEfDataSources"/>.
/// </summary>
/// <remarks>
/// <para><c>OnConfiguring</c> builds new options for every context instance, so pools cannot belong to an options object:
/// two contexts whose settings are equal (property by property; objects such as the logger factory by reference) share
/// the factory, and through it one pool per connection string, for the life of the process (as the providers' own pools
/// do).</para>
/// <para>A data source the application gives EF (<c>UseNpgsql(dataSource)</c>, an <c>NpgsqlDataSource</c> in its
/// services) gets a <see cref="CovetDataSource"/> over it, keyed by the data source object (no connection string, no
/// password), for the life of the process too. Keying it weakly would not free anything: the Covet pool references its
/// data source to open connections, and every pool stays reachable from the process-wide pool registry and its timers
/// until disposed, so the key would never be collected. Nor is there a signal to dispose on: a data source raises
/// nothing when the application disposes it. Hence the documented limit: give EF one long-lived data source, not one per
/// context.</para>
/// </remarks>
internal static class CovetEfPools
{
    // The name CovetDataSource.Create(DbDataSource, CovetPoolOptions?) gives its data source argument in the
    // CovetConfigurationException it throws when that data source pools its connections itself.
    private const string PhysicalConnectionsSetting = "physicalConnections";

    private static readonly ConcurrentDictionary<(DbProviderFactory Inner, CovetPoolOptionsKey Key), CovetProviderFactory> Factories = new();
    private static readonly ConcurrentDictionary<(DbDataSource Physical, CovetPoolOptionsKey Key), CovetDataSource> DataSources = new();

    // Creating a CovetDataSource starts a pool (its timers, its warm-up): never twice for one key, so creation is serialised.
    private static readonly Lock DataSourceCreation = new();

    public static CovetProviderFactory GetFactory(DbProviderFactory inner, CovetPoolOptionsKey key) =>
        Factories.TryGetValue((inner, key), out var factory)
            ? factory
            : Factories.GetOrAdd((inner, key), static k => new CovetProviderFactory(k.Inner, k.Key.Options));

    /// <summary>The existing factory, without creating one.</summary>
    public static CovetProviderFactory? FindFactory(DbProviderFactory inner, CovetPoolOptionsKey key) =>
        Factories.TryGetValue((inner, key), out var factory) ? factory : null;

    /// <summary>The Covet data source over a data source the application gave EF.</summary>
    /// <exception cref="NotSupportedException"><paramref name="physical"/> pools its connections itself.</exception>
    /// <exception cref="CovetConfigurationException">The pool settings cannot be used with a data source (<see cref="CovetPoolOptions.PasswordProvider"/>).</exception>
    public static CovetDataSource GetDataSource(DbDataSource physical, CovetPoolOptionsKey key)
    {
        if (DataSources.TryGetValue((physical, key), out var existing))
            return existing;
        lock (DataSourceCreation)
        {
            if (DataSources.TryGetValue((physical, key), out existing))
                return existing;
            var created = CreateDataSource(physical, key, builtByEf: false);
            DataSources[(physical, key)] = created;
            return created;
        }
    }

    /// <summary>The existing data source over <paramref name="physical"/>, without creating one.</summary>
    public static CovetDataSource? FindDataSource(DbDataSource physical, CovetPoolOptionsKey key) =>
        DataSources.TryGetValue((physical, key), out var source) ? source : null;

    /// <summary><see cref="CovetDataSource.Create(DbDataSource, CovetPoolOptions?)"/>, with a refusal to stack on the provider's pool that says what to change.</summary>
    /// <param name="physical">The data source Covet opens its physical connections from.</param>
    /// <param name="key">The pool settings.</param>
    /// <param name="builtByEf">Whether <paramref name="physical"/> is the unpooled copy of a data source EF built (only <c>ConfigureDataSource</c> can make it pool).</param>
    /// <exception cref="NotSupportedException"><paramref name="physical"/> pools its connections itself.</exception>
    /// <exception cref="CovetConfigurationException">Another setting is wrong (its own message).</exception>
    public static CovetDataSource CreateDataSource(DbDataSource physical, CovetPoolOptionsKey key, bool builtByEf)
    {
        try
        {
            return CovetDataSource.Create(physical, key.Options);
        }
        catch (CovetConfigurationException e) when (e.Setting == PhysicalConnectionsSetting && PoolsItself(physical))
        {
            throw new NotSupportedException(builtByEf
                ? $"The {physical.GetType().Name} EF builds for this context pools its connections itself, and Covet must be the only pool. " +
                  "Covet builds it with Pooling=false in the connection string; the context's ConfigureDataSource turns pooling back on: " +
                  $"leave Pooling alone there, or remove UseCovetPool for this context. ({e.Message})"
                : $"This context creates its connections from a {physical.GetType().Name} that pools them itself, and Covet must be the " +
                  "only pool. A data source the application gives EF (UseNpgsql(dataSource), or an NpgsqlDataSource in the application's " +
                  "services) must be built with Pooling=false. (Covet copies the data sources EF Npgsql builds itself for MapEnum, " +
                  "plugins or ConfigureDataSource unpooled; with an EF Npgsql version whose data source manager it does not know, " +
                  $"put Pooling=false in the connection string instead.) Or remove UseCovetPool for this context. ({e.Message})", e);
        }
    }

    /// <summary>The check <see cref="CovetDataSource.Create(DbDataSource, CovetPoolOptions?)"/> makes: the provider's own parse of the data source's string says Pooling is not false.</summary>
    private static bool PoolsItself(DbDataSource physical)
    {
        try
        {
            using var probe = physical.CreateConnection();
            var builder = DbProviderFactories.GetFactory(probe)?.CreateConnectionStringBuilder() ?? new DbConnectionStringBuilder();
            builder.ConnectionString = physical.ConnectionString;
            return builder.TryGetValue("Pooling", out var pooling)
                   && !string.Equals(Convert.ToString(pooling, CultureInfo.InvariantCulture), "false", StringComparison.OrdinalIgnoreCase);
        }
        catch (Exception)
        {
            return false; // not the pooling refusal: the original exception stands
        }
    }
}

/// <summary>
/// The Covet pools over the data sources EF builds itself (EF Npgsql: <c>MapEnum</c>, plugins, <c>ConfigureDataSource</c>),
/// one per (EF's data source, pool settings), each over an unpooled copy of EF's data source
/// (<see cref="UnpooledProviderDataSource"/>). A singleton of EF's internal service provider, like EF Npgsql's
/// <c>NpgsqlDataSourceManager</c> that owns the data sources it builds: the pools and copies live as long as EF's.
/// </summary>
/// <remarks>
/// <para>Every context whose options share an internal service provider shares EF's data source for a connection string,
/// and so the Covet pool. With the default service provider caching that provider, and so the pool, lives for the
/// process. When it is disposed (an internal service provider the application owns), the pools and copies are disposed
/// with it. When it is dropped without being disposed (<c>EnableServiceProviderCaching(false)</c> builds one per context
/// options, and nothing disposes it), nothing of it is reachable any more, no context included, and the finalizer hands
/// the pools and copies to a thread-pool thread to dispose: they would otherwise stay for the process, kept by the pool
/// registry and their timers. (EF's own data source for that provider is not disposed by EF in that case.)</para>
/// </remarks>
internal sealed class CovetEfDataSources : IDisposable, IAsyncDisposable
{
    private readonly Lock _lock = new();
    private readonly Dictionary<DbDataSource, DbDataSource> _copies = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<(DbDataSource Ef, CovetPoolOptionsKey Key), CovetDataSource> _pools = [];
    private bool _disposed;

    ~CovetEfDataSources()
    {
        // Only reachable from this object now (the pools from the registry too): safe to read, and disposed off the
        // finalizer thread, since closing physical connections is I/O.
        var owned = Take();
        if (owned.Count > 0)
            ThreadPool.UnsafeQueueUserWorkItem(static o => DisposeAll(o), owned, preferLocal: false);
    }

    /// <summary>The existing pool over EF's <paramref name="efSource"/>, without creating one.</summary>
    public CovetDataSource? Find(DbDataSource efSource, CovetPoolOptionsKey key)
    {
        lock (_lock)
            return _pools.GetValueOrDefault((efSource, key));
    }

    /// <summary>Whether Covet pools over a copy of <paramref name="efSource"/>, a data source EF built.</summary>
    public bool IsCopied(DbDataSource efSource)
    {
        lock (_lock)
            return _copies.ContainsKey(efSource);
    }

    /// <summary>The pool over EF's <paramref name="efSource"/>, created over a copy from <paramref name="buildCopy"/> the first time.</summary>
    /// <exception cref="NotSupportedException">The copy pools its connections itself (ConfigureDataSource turned pooling on).</exception>
    public CovetDataSource GetOrCreate(DbDataSource efSource, CovetPoolOptionsKey key, Func<DbDataSource> buildCopy)
    {
        // Serialised: creating a pool starts its timers and warm-up, and building a copy runs EF's configuration.
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_pools.TryGetValue((efSource, key), out var existing))
                return existing;
            if (!_copies.TryGetValue(efSource, out var copy))
            {
                copy = buildCopy();
                _copies.Add(efSource, copy);
            }
            var created = CovetEfPools.CreateDataSource(copy, key, builtByEf: true);
            _pools.Add((efSource, key), created);
            return created;
        }
    }

    public void Dispose()
    {
        GC.SuppressFinalize(this);
        DisposeAll(Take());
    }

    public async ValueTask DisposeAsync()
    {
        GC.SuppressFinalize(this);
        foreach (var dataSource in Take())
        {
            try
            {
                await dataSource.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception)
            {
                // Best effort: one failing data source must not keep the others open.
            }
        }
    }

    // Pools first (they close their physical connections through the copies), then the copies.
    private List<DbDataSource> Take()
    {
        lock (_lock)
        {
            _disposed = true;
            List<DbDataSource> owned = [.. _pools.Values, .. _copies.Values];
            _pools.Clear();
            _copies.Clear();
            return owned;
        }
    }

    private static void DisposeAll(List<DbDataSource> owned)
    {
        foreach (var dataSource in owned)
        {
            try
            {
                dataSource.Dispose();
            }
            catch (Exception)
            {
                // Best effort: one failing data source must not keep the others open.
            }
        }
    }
}

/// <summary>Value equality over every public property of a <see cref="CovetPoolOptions"/> snapshot.</summary>
internal sealed class CovetPoolOptionsKey : IEquatable<CovetPoolOptionsKey>
{
    // Every readable public property, so options added to the core later take part without a change here.
    private static readonly PropertyInfo[] Properties = typeof(CovetPoolOptions)
        .GetProperties(BindingFlags.Public | BindingFlags.Instance)
        .Where(p => p.CanRead && p.GetIndexParameters().Length == 0)
        .OrderBy(p => p.Name, StringComparer.Ordinal)
        .ToArray();

    private readonly object?[] _values;
    private readonly int _hash;

    public CovetPoolOptionsKey(CovetPoolOptions options)
    {
        Options = options.Clone();
        _values = Properties.Select(p => p.GetValue(Options)).ToArray();
        var hash = new HashCode();
        foreach (var value in _values)
            hash.Add(value);
        _hash = hash.ToHashCode();
    }

    /// <summary>A private copy: never changed after construction.</summary>
    public CovetPoolOptions Options { get; }

    public bool Equals(CovetPoolOptionsKey? other)
    {
        if (other is null)
            return false;
        if (ReferenceEquals(this, other))
            return true;
        if (_hash != other._hash)
            return false;
        for (var i = 0; i < _values.Length; i++)
            if (!Equals(_values[i], other._values[i]))
                return false;
        return true;
    }

    public override bool Equals(object? obj) => Equals(obj as CovetPoolOptionsKey);

    public override int GetHashCode() => _hash;
}
