using System.Numerics;

namespace Covet.Data.Diagnostics;

/// <summary>
/// A lock-free log-linear histogram of durations: each power of two is split into <see cref="SubBuckets"/> linear buckets,
/// so any recorded value lands within 1/8 (12.5 %) of its true size, from 100 ns to hours, in a fixed 2 KiB of counters.
/// Recording is one <see cref="Interlocked.Increment(ref long)"/>; memory never grows with the number of samples.
/// </summary>
internal sealed class LatencyHistogram
{
    private const int SubBucketBits = 3;
    private const int SubBuckets = 1 << SubBucketBits;
    private const int Octaves = 40;          // 2^40 units of 100 ns ≈ 30 hours
    private const long UnitTicks = 1;         // 1 TimeSpan tick = 100 ns
    private readonly long[] _counts = new long[Octaves * SubBuckets];
    private long _max;

    public void Record(TimeSpan duration)
    {
        var units = Math.Max(0, duration.Ticks / UnitTicks);
        Interlocked.Increment(ref _counts[IndexOf(units)]);
        var max = Volatile.Read(ref _max);
        while (units > max)
        {
            var seen = Interlocked.CompareExchange(ref _max, units, max);
            if (seen == max)
                break;
            max = seen;
        }
    }

    public TimeSpan Max => TimeSpan.FromTicks(Volatile.Read(ref _max) * UnitTicks);

    public long Count
    {
        get
        {
            long total = 0;
            foreach (ref readonly var c in _counts.AsSpan())
                total += Volatile.Read(in c);
            return total;
        }
    }

    /// <summary>The value at or below which <paramref name="percentile"/> % of samples fall (upper edge of its bucket, capped by the max).</summary>
    public TimeSpan Percentile(double percentile)
    {
        Span<long> snapshot = stackalloc long[_counts.Length];
        long total = 0;
        for (var i = 0; i < _counts.Length; i++)
            total += snapshot[i] = Volatile.Read(ref _counts[i]);
        if (total == 0)
            return TimeSpan.Zero;
        var rank = (long)Math.Ceiling(total * percentile / 100.0);
        long seen = 0;
        for (var i = 0; i < snapshot.Length; i++)
        {
            seen += snapshot[i];
            if (seen >= Math.Max(1, rank))
                return TimeSpan.FromTicks(Math.Min(UpperEdgeOf(i), Volatile.Read(ref _max)) * UnitTicks);
        }
        return Max;
    }

    public void Reset()
    {
        Array.Clear(_counts);
        Volatile.Write(ref _max, 0);
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
