using System.Collections.Concurrent;

namespace Covet.Data.ConformanceTests;

/// <summary>
/// One line per row (scenario, target, path, equal / differs / deliberate, the first differing step), written at the end
/// of the run to $COVET_CONFORMANCE_REPORT or conformance-report.tsv beside the test assembly: the numbers of the README.
/// </summary>
internal static class Report
{
    private static readonly ConcurrentQueue<string> Lines = new();

    public static void Start() => Lines.Clear();

    public static void Add(string scenario, TargetKind target, PathKind path, string verdict, string detail) =>
        Lines.Enqueue($"{scenario}\t{target}\t{path}\t{verdict}\t{detail.Replace('\n', ' ').Replace('\t', ' ')}");

    public static void Flush()
    {
        var path = Environment.GetEnvironmentVariable("COVET_CONFORMANCE_REPORT");
        if (string.IsNullOrWhiteSpace(path))
            path = Path.Combine(AppContext.BaseDirectory, "conformance-report.tsv");
        File.WriteAllLines(path, ["scenario\ttarget\tpath\tverdict\tdetail", .. Lines.OrderBy(l => l, StringComparer.Ordinal)]);
    }
}
