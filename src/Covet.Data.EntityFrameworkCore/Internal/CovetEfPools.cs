using System.Collections.Concurrent;
using System.Data.Common;
using System.Reflection;

namespace Covet.Data.EntityFrameworkCore.Internal;

/// <summary>
/// The Covet pools behind every <c>UseCovetPool</c> in the process: one factory per (provider factory, pool settings),
/// and one data source per (provider data source, pool settings).
/// </summary>
/// <remarks>
/// <para><c>OnConfiguring</c> builds new options for every context instance, so pools cannot belong to an options object:
/// two contexts whose settings are equal (property by property; objects such as the logger factory by reference) share
/// the factory, and through it one pool per connection string, for the life of the process (as the providers' own pools
/// do).</para>
/// <para>Contexts whose provider creates its connections from a <see cref="DbDataSource"/> (EF Npgsql with <c>MapEnum</c>,
/// plugins or <c>ConfigureDataSource</c>: one data source per connection string, kept by EF's internal services, which
/// every context configured alike shares) get a <see cref="CovetDataSource"/> over it. The data source object itself is
/// the key, so no connection string, and no password, is part of it.</para>
/// </remarks>
internal static class CovetEfPools
{
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

    /// <summary>The Covet data source whose physical connections come from <paramref name="physical"/>.</summary>
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
            CovetDataSource created;
            try
            {
                created = CovetDataSource.Create(physical, key.Options);
            }
            catch (CovetConfigurationException e) when (e.Setting != nameof(CovetPoolOptions.PasswordProvider))
            {
                throw new NotSupportedException(
                    $"This context creates its connections from a {physical.GetType().Name} that pools them itself, and Covet must be the " +
                    "only pool. With EF Npgsql, UseCovetPool turns pooling off in the connection string EF builds its data source from " +
                    "(MapEnum, plugins, ConfigureDataSource); a data source the application gives EF (UseNpgsql(dataSource), or an " +
                    "NpgsqlDataSource in the application's services) must be built with Pooling=false, and ConfigureDataSource must not " +
                    $"turn pooling back on. Or remove UseCovetPool for this context. ({e.Message})", e);
            }
            DataSources[(physical, key)] = created;
            return created;
        }
    }

    /// <summary>The existing data source over <paramref name="physical"/>, without creating one.</summary>
    public static CovetDataSource? FindDataSource(DbDataSource physical, CovetPoolOptionsKey key) =>
        DataSources.TryGetValue((physical, key), out var source) ? source : null;
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
