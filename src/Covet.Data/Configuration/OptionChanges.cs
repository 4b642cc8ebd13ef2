using System.Globalization;
using System.Reflection;

namespace Covet.Data;

/// <summary>
/// What differs between two <see cref="CovetPoolOptions"/>, and which settings may change on a running pool (see
/// <see cref="CovetDataSource.Reconfigure"/>). One list for the pool's check, its log line and the README's table.
/// </summary>
internal static class OptionChanges
{
    /// <summary>
    /// Settings fixed for a pool's life, each with the reason. Everything else applies live.
    /// </summary>
    public static readonly IReadOnlyDictionary<string, string> NotLive = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        [nameof(CovetPoolOptions.PoolName)] = "it identifies the pool in logs, metrics, the registry and the dashboard",
        [nameof(CovetPoolOptions.LoggerFactory)] = "the pool's loggers are made from it when the pool is created",
        [nameof(CovetPoolOptions.TimeProvider)] = "every timestamp the pool holds (checkouts, idle times, lifetimes) is on its clock",
        [nameof(CovetPoolOptions.ResetSessionOnReturn)] = "the reset strategy (Npgsql's reset sent with the next command included) is chosen when the pool is created; switching it while sessions are in flight could hand one on unreset",
        [nameof(CovetPoolOptions.ResetQuery)] = "part of the reset strategy, chosen when the pool is created (see ResetSessionOnReturn)",
    };

    private static readonly PropertyInfo[] Settings = typeof(CovetPoolOptions).GetProperties(BindingFlags.Public | BindingFlags.Instance)
        .Where(p => p.CanRead && p.CanWrite).ToArray();

    /// <summary>The settings whose values differ, in declaration order, with printable old and new values (no secret: delegates print as set/none).</summary>
    public static List<(string Name, string Old, string New)> Between(CovetPoolOptions current, CovetPoolOptions next)
    {
        List<(string, string, string)> changes = [];
        foreach (var setting in Settings)
        {
            var before = setting.GetValue(current);
            var after = setting.GetValue(next);
            if (!Equals(before, after))
                changes.Add((setting.Name, Print(before), Print(after)));
        }
        return changes;
    }

    /// <summary>Throws when <paramref name="changes"/> include a setting that cannot change live, naming it and saying why.</summary>
    /// <exception cref="CovetConfigurationException">The first such setting.</exception>
    public static void ThrowIfNotLive(List<(string Name, string Old, string New)> changes)
    {
        foreach (var (name, _, _) in changes)
        {
            if (NotLive.TryGetValue(name, out var why))
                throw new CovetConfigurationException(name,
                    $"{name} cannot change on a running pool ({why}); keep its value (start from the data source's Options) or create a new data source.");
        }
    }

    /// <summary>"MaxPoolSize 10 → 20, AcquireTimeout 00:00:30 → 00:00:05".</summary>
    public static string Describe(List<(string Name, string Old, string New)> changes) =>
        changes.Count == 0 ? "no setting changed" : string.Join(", ", changes.Select(c => $"{c.Name} {c.Old} → {c.New}"));

    private static string Print(object? value) => value switch
    {
        null => "(none)",
        string text => $"'{text}'",
        TimeSpan span => span == Timeout.InfiniteTimeSpan ? "infinite" : span.ToString("c", CultureInfo.InvariantCulture),
        IFormattable formattable => formattable.ToString(null, CultureInfo.InvariantCulture),
        bool flag => flag ? "true" : "false",
        Delegate => "(set)", // a password provider: never its result
        _ => value.GetType().Name, // an ILoggerFactory or TimeProvider: its type, nothing else
    };
}
