namespace Covet.Data.LoadTest.Measurement;

/// <summary>One bar of a latency histogram: samples with <c>FromMs &lt;= latency &lt; ToMs</c>.</summary>
public sealed record HistogramBucket(double FromMs, double ToMs, int Count);

/// <summary>
/// Log-scale buckets (a fixed number per decade) shared by every pool of a report, so their histograms line up bar for
/// bar. Latencies span microseconds (an idle connection handed out) to seconds (a caller queued behind thousands).
/// </summary>
public static class LatencyHistogram
{
    /// <summary>Buckets per power of ten.</summary>
    public const int BucketsPerDecade = 8;

    /// <summary>Bucket edges, in milliseconds, covering every sample of <paramref name="series"/>.</summary>
    public static double[] Edges(IEnumerable<double[]> series)
    {
        var all = series.Where(s => s.Length > 0).ToList();
        if (all.Count == 0)
            return [0.001, 0.01];
        var min = Math.Max(all.Min(s => s[0]), 0.0001);
        var max = Math.Max(all.Max(s => s[^1]), min * 1.0001);
        var from = Math.Floor(Math.Log10(min) * BucketsPerDecade);
        var to = Math.Ceiling(Math.Log10(max) * BucketsPerDecade);
        if (to <= from)
            to = from + 1;
        var edges = new double[(int)(to - from) + 1];
        for (var i = 0; i < edges.Length; i++)
            edges[i] = Math.Pow(10, (from + i) / BucketsPerDecade);
        return edges;
    }

    /// <summary>Counts ascending samples into the buckets between consecutive <paramref name="edges"/>.</summary>
    public static List<HistogramBucket> Count(double[] sortedMs, double[] edges)
    {
        var buckets = new List<HistogramBucket>(edges.Length - 1);
        var index = 0;
        for (var b = 0; b < edges.Length - 1; b++)
        {
            var count = 0;
            var last = b == edges.Length - 2;
            while (index < sortedMs.Length && (sortedMs[index] < edges[b + 1] || last))
            {
                count++;
                index++;
            }
            buckets.Add(new HistogramBucket(edges[b], edges[b + 1], count));
        }
        return buckets;
    }
}
