using System.Numerics;

namespace Covet.Data.Diagnostics;

/// <summary>
/// A lock-free log-linear histogram of durations: each power of two is split into <see cref="SubBuckets"/> linear buckets,
/// so any recorded value lands within 1/8 (12.5 %) of its true size, from 100 ns to hours. Recording is one
/// <see cref="Interlocked.Increment(ref long)"/>; memory never grows with the number of samples.
/// </summary>
/// <remarks>
/// The buckets of each power of two (an octave, 8 counters) are allocated the first time a value lands in it, so a pool
/// whose durations cluster in a few octaves (every pool) holds a few hundred bytes instead of 2.5 KiB: an application
/// with a database per tenant has thousands of pools. Two threads may race to allocate an octave; the loser's array is
/// dropped by the compare-and-swap before anything was counted in it.
/// </remarks>
internal sealed class LatencyHistogram
{
    private const int SubBucketBits = 3;
    private const int SubBuckets = 1 << SubBucketBits;
    private const int Octaves = 40;          // 2^40 units of 100 ns ≈ 30 hours
    private const long UnitTicks = 1;         // 1 TimeSpan tick = 100 ns
    private readonly long[]?[] _octaves = new long[]?[Octaves];
    private long _max;

    public void Record(TimeSpan duration)
    {
        var units = Math.Max(0, duration.Ticks / UnitTicks);
        var index = IndexOf(units);
        Interlocked.Increment(ref OctaveOf(index >> SubBucketBits)[index & (SubBuckets - 1)]);
        var max = Volatile.Read(ref _max);
        while (units > max)
        {
            var seen = Interlocked.CompareExchange(ref _max, units, max);
            if (seen == max)
                break;
            max = seen;
        }
    }

    private long[] OctaveOf(int octave) =>
        Volatile.Read(ref _octaves[octave]) ?? Interlocked.CompareExchange(ref _octaves[octave], new long[SubBuckets], null) ?? _octaves[octave]!;

    public TimeSpan Max => TimeSpan.FromTicks(Volatile.Read(ref _max) * UnitTicks);

    public long Count => Snapshot(stackalloc long[Octaves * SubBuckets]);

    private long Snapshot(Span<long> counts)
    {
        long total = 0;
        for (var octave = 0; octave < Octaves; octave++)
        {
            if (Volatile.Read(ref _octaves[octave]) is not { } buckets)
                continue;
            for (var sub = 0; sub < SubBuckets; sub++)
                total += counts[(octave << SubBucketBits) + sub] = Volatile.Read(ref buckets[sub]);
        }
        return total;
    }

    /// <summary>
    /// The value at or below which <paramref name="percentile"/> % of samples fall (upper edge of its bucket, capped by the
    /// max). <paramref name="zeros"/> more samples of zero duration are counted as if recorded (checkouts that took the
    /// fast path, counted apart so they cost no shared write).
    /// </summary>
    public TimeSpan Percentile(double percentile, long zeros = 0)
    {
        Span<long> counts = stackalloc long[Octaves * SubBuckets];
        counts.Clear();
        var total = Snapshot(counts) + zeros;
        counts[0] += zeros;
        if (total == 0)
            return TimeSpan.Zero;
        var rank = (long)Math.Ceiling(total * percentile / 100.0);
        long seen = 0;
        for (var i = 0; i < counts.Length; i++)
        {
            seen += counts[i];
            if (seen >= Math.Max(1, rank))
                return TimeSpan.FromTicks(Math.Min(UpperEdgeOf(i), Volatile.Read(ref _max)) * UnitTicks);
        }
        return Max;
    }

    private static int IndexOf(long value)
    {
        if (value < SubBuckets)
            return (int)value;
        var octave = BitOperations.Log2((ulong)value) - SubBucketBits + 1;      // >= 1
        var sub = (int)(value >> (octave - 1)) - SubBuckets;                      // 0..SubBuckets-1
        return Math.Min(octave * SubBuckets + sub, Octaves * SubBuckets - 1);
    }

    private static long UpperEdgeOf(int index)
    {
        var octave = index / SubBuckets;
        var sub = index % SubBuckets;
        if (octave == 0)
            return sub;
        return ((long)(SubBuckets + sub + 1) << (octave - 1)) - 1;
    }
}
