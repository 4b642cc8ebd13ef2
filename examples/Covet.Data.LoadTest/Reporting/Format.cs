using System.Globalization;

namespace Covet.Data.LoadTest.Reporting;

/// <summary>Number formatting shared by the console and HTML reports (invariant culture, so reports read the same everywhere).</summary>
public static class Format
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    /// <summary>A latency: microseconds below 1 ms, 2 decimals below 100 ms, whole milliseconds above.</summary>
    public static string Ms(double ms) => ms switch
    {
        < 1 => (ms * 1000).ToString("0.0", Invariant) + " µs",
        < 100 => ms.ToString("0.00", Invariant) + " ms",
        _ => ms.ToString("N0", Invariant) + " ms",
    };

    /// <summary>A latency on a chart axis: µs, ms or s.</summary>
    public static string Duration(double ms) => ms switch
    {
        < 0.001 => (ms * 1_000_000).ToString("0.#", Invariant) + " ns",
        < 1 => (ms * 1000).ToString("0.#", Invariant) + " µs",
        < 1000 => ms.ToString("0.#", Invariant) + " ms",
        _ => (ms / 1000).ToString("0.#", Invariant) + " s",
    };

    public static string Count(long n) => n.ToString("N0", Invariant);

    public static string Rate(double perSecond) => perSecond.ToString("N0", Invariant);

    public static string Seconds(double s) => s.ToString("0.00", Invariant) + " s";

    /// <summary>Bytes as B, KB (1024) or MB.</summary>
    public static string Bytes(double? bytes) => bytes switch
    {
        null => "n/a",
        var b when Math.Abs(b.Value) < 1024 => b.Value.ToString("N0", Invariant) + " B",
        var b when Math.Abs(b.Value) < 1024 * 1024 => (b.Value / 1024).ToString("0.0", Invariant) + " KB",
        var b => (b.Value / 1024 / 1024).ToString("0.00", Invariant) + " MB",
    };

    /// <summary>A ratio as "×1.23" ("×12.3", "×1,234" when large).</summary>
    public static string Ratio(double? ratio) => ratio switch
    {
        null => "n/a",
        >= 100 => "×" + ratio.Value.ToString("N0", Invariant),
        >= 10 => "×" + ratio.Value.ToString("0.0", Invariant),
        _ => "×" + ratio.Value.ToString("0.00", Invariant),
    };

    /// <summary>Whether the ratio is better (true), worse (false) or about the same (null, within 5 %).</summary>
    public static bool? Verdict(Ratio ratio) => ratio.CovetOverProvider switch
    {
        null => null,
        var r when Math.Abs(r.Value - 1) < 0.05 => null,
        var r => ratio.HigherIsBetter ? r.Value > 1 : r.Value < 1,
    };

    /// <summary>A number for SVG attributes.</summary>
    public static string F(double value) => value.ToString("0.##", Invariant);
}
