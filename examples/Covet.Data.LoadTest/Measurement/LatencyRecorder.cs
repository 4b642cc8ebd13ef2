using System.Diagnostics;

namespace Covet.Data.LoadTest.Measurement;

/// <summary>
/// Collects per-operation latencies measured by the workers themselves (a <see cref="Stopwatch"/> timestamp around
/// <c>OpenAsync</c> and around the use of the connection), independently of what the pool reports about itself.
/// </summary>
/// <remarks>
/// Each worker records into its own <see cref="Local"/> list without any synchronisation and hands it over once, when it
/// finishes; percentiles are then exact (sorted samples), not approximated by buckets. Memory is 8 bytes per sample,
/// i.e. ~16 MB for a million operations (acquire + use), which is fine for a load tester.
/// </remarks>
public sealed class LatencyRecorder
{
    private readonly Lock _lock = new();
    private readonly List<double[]> _chunks = [];
    private double[]? _sorted;

    /// <summary>A worker's private list. Not thread-safe: one per worker.</summary>
    public sealed class Local(LatencyRecorder owner)
    {
        private readonly List<double> _samples = [];

        /// <summary>Records the time between two <see cref="Stopwatch.GetTimestamp"/> values.</summary>
        public void Add(long startTimestamp, long endTimestamp) =>
            _samples.Add(Stopwatch.GetElapsedTime(startTimestamp, endTimestamp).TotalMilliseconds);

        /// <summary>Hands the samples to the recorder. Call once, when the worker is done.</summary>
        public void Flush()
        {
            if (_samples.Count > 0)
                owner.Merge(_samples.ToArray());
            _samples.Clear();
        }
    }

    /// <summary>A new private list for one worker.</summary>
    public Local CreateLocal() => new(this);

    private void Merge(double[] samples)
    {
        lock (_lock)
        {
            _chunks.Add(samples);
            _sorted = null;
        }
    }

    /// <summary>Adds everything another recorder holds (used to combine the rounds of a comparison).</summary>
    public void AddAll(LatencyRecorder other) => Merge(other.Sorted());

    /// <summary>Number of samples.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
                return _chunks.Sum(c => c.Length);
        }
    }

    /// <summary>All samples in milliseconds, ascending.</summary>
    public double[] Sorted()
    {
        lock (_lock)
        {
            if (_sorted is null)
            {
                _sorted = new double[_chunks.Sum(c => c.Length)];
                var offset = 0;
                foreach (var chunk in _chunks)
                {
                    chunk.CopyTo(_sorted, offset);
                    offset += chunk.Length;
                }
                Array.Sort(_sorted);
            }
            return _sorted;
        }
    }

    /// <summary>Percentiles and maximum (nearest-rank on the sorted samples).</summary>
    public LatencySummary Summarize()
    {
        var s = Sorted();
        if (s.Length == 0)
            return new LatencySummary(0, 0, 0, 0, 0, 0, 0);
        return new LatencySummary(s.Length, s[0], Percentile(s, 50), Percentile(s, 95), Percentile(s, 99), s[^1], s.Average());
    }

    /// <summary>Nearest-rank percentile of ascending samples.</summary>
    public static double Percentile(double[] sorted, double percent)
    {
        if (sorted.Length == 0)
            return 0;
        var rank = (int)Math.Ceiling(percent / 100.0 * sorted.Length);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)];
    }
}

/// <summary>Latency percentiles in milliseconds.</summary>
public sealed record LatencySummary(int Count, double MinMs, double P50Ms, double P95Ms, double P99Ms, double MaxMs, double MeanMs);
