using System.Collections.Concurrent;
using System.Data.Common;
using System.Reflection;

namespace Covet.Data.EntityFrameworkCore.Internal;

/// <summary>
/// The Covet factories behind every <c>UseCovetPool</c> in the process, one per (provider factory, pool settings).
/// </summary>
/// <remarks>
/// <c>OnConfiguring</c> builds new options for every context instance, so pools cannot belong to an options object: two
/// contexts whose settings are equal (property by property; objects such as the logger factory by reference) share the
/// factory, and through it one pool per connection string, for the life of the process (as the providers' own pools do).
/// </remarks>
internal static class CovetEfPools
{
    private static readonly ConcurrentDictionary<(DbProviderFactory Inner, CovetPoolOptionsKey Key), CovetProviderFactory> Factories = new();

    public static CovetProviderFactory GetFactory(DbProviderFactory inner, CovetPoolOptionsKey key) =>
        Factories.TryGetValue((inner, key), out var factory)
            ? factory
            : Factories.GetOrAdd((inner, key), static k => new CovetProviderFactory(k.Inner, k.Key.Options));

    /// <summary>The existing factory, without creating one.</summary>
    public static CovetProviderFactory? FindFactory(DbProviderFactory inner, CovetPoolOptionsKey key) =>
        Factories.TryGetValue((inner, key), out var factory) ? factory : null;
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
