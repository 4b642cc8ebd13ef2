namespace Covet.Data.Pooling;

/// <summary>Every live pool in the process, for <c>ClearAllPools</c> and the statistics view over all pools.</summary>
internal static class CovetPoolRegistry
{
    private static readonly Lock Gate = new();
    private static readonly List<CovetPool> Pools = [];

    public static void Add(CovetPool pool)
    {
        lock (Gate)
            Pools.Add(pool);
    }

    public static void Remove(CovetPool pool)
    {
        lock (Gate)
            Pools.Remove(pool);
    }

    public static IReadOnlyList<CovetPool> Snapshot()
    {
        lock (Gate)
            return [.. Pools];
    }
}
