using System.Runtime.CompilerServices;
using Covet.Data.Pooling;

namespace Covet.Data;

/// <summary>
/// Process-unique pool ids, for views that must tell apart pools that share a name (names are not unique: two
/// connection strings to one database get the same default name). Kept beside the pool rather than in it, so the
/// pool's hot fields are untouched; an id is assigned the first time anyone asks and lives as long as the pool.
/// </summary>
internal static class PoolIdentity
{
    private static readonly ConditionalWeakTable<CovetPool, StrongBox<long>> Ids = new();
    private static long _last;

    public static long IdOf(CovetPool pool) =>
        Ids.GetValue(pool, static _ => new StrongBox<long>(Interlocked.Increment(ref _last))).Value;

    /// <summary>The pool's statistics with its <see cref="CovetPoolStatistics.PoolId"/> filled in.</summary>
    public static CovetPoolStatistics StatisticsOf(CovetPool pool) => pool.GetStatistics() with { PoolId = IdOf(pool) };
}
