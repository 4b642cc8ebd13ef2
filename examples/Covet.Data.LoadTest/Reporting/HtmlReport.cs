using System.Net;
using System.Text;
using Covet.Data.LoadTest.Measurement;
using Covet.Data.LoadTest.Scenarios;
using static Covet.Data.LoadTest.Reporting.Format;

namespace Covet.Data.LoadTest.Reporting;

/// <summary>
/// The report as one self-contained HTML page (<c>--html FILE</c>): the summary table, the acquire-latency histogram and
/// each pool's size over time, drawn as inline SVG. No scripts, no external styles, fonts or CDNs: it opens offline
/// and can be attached to a CI run as is.
/// </summary>
public static class HtmlReport
{
    private static readonly string[] PoolColours = ["#2563eb", "#ea580c", "#16a34a", "#9333ea"];
    private const string TotalColour = "#111827";

    public static async Task WriteAsync(LoadTestReport report, string path) => await File.WriteAllTextAsync(path, Render(report));

    public static string Render(LoadTestReport report)
    {
        var html = new StringBuilder();
        html.Append("""
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>Covet.Data load test</title>
            <style>
            body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1100px;color:#1f2937;padding:0 16px}
            h1{font-size:22px;margin-bottom:4px} h2{font-size:17px;margin-top:28px}
            .meta{color:#6b7280;font-size:13px} table{border-collapse:collapse;font-size:13px;margin-top:8px}
            td,th{border-bottom:1px solid #e5e7eb;padding:4px 10px;text-align:right} td:first-child,th:first-child{text-align:left}
            th{background:#f9fafb} .good{color:#15803d;font-weight:600} .bad{color:#b91c1c;font-weight:600}
            .fail{background:#fef2f2;border:1px solid #fecaca;color:#991b1b;padding:8px 12px;border-radius:6px}
            .ok{background:#f0fdf4;border:1px solid #bbf7d0;color:#166534;padding:8px 12px;border-radius:6px}
            svg{background:#fff;border:1px solid #e5e7eb;border-radius:6px;margin-top:8px} svg text{font-size:11px;fill:#374151}
            .note{color:#6b7280;font-size:12px} td.part{padding-left:28px;color:#4b5563}
            </style></head><body>
            """);
        html.Append($"<h1>Covet.Data load test</h1><div class=\"meta\">{E(report.Provider)} · {E(report.ConnectionString)}<br>")
            .Append($"{E(report.Description)}<br>{report.Machine.ProcessorCount} cores · {E(report.Machine.Runtime)} · {E(report.Machine.OperatingSystem)} · ")
            .Append($"{report.StartedAt:yyyy-MM-dd HH:mm:ss zzz}</div>");

        if (report.Failed)
            html.Append("<p class=\"fail\">").Append(string.Join("<br>", report.Failures.Select(E))).Append("</p>");
        else
            html.Append("<p class=\"ok\">No operation failed.</p>");

        SummaryTable(html, report);

        html.Append("<h2>Acquire latency distribution</h2><div class=\"note\">Time spent in <code>OpenAsync</code>, measured by each caller; ")
            .Append("all rounds. Log-scale buckets; bar height is the share of operations. Dashed lines: p50 and p99.</div>");
        Histogram(html, report.Pools);

        foreach (var kind in report.Pools.Select(p => p.Pool))
        {
            var run = report.Runs.LastOrDefault(r => r.Pool == kind);
            if (run is null || run.Samples.Count == 0)
                continue;
            html.Append($"<h2>Pool over time: {E(run.Label)}{(run.Round > 0 && report.Settings.Rounds > 1 ? $" (round {run.Round})" : "")}</h2>");
            html.Append(kind == PoolKind.Covet
                ? "<div class=\"note\">Sampled every ~100 ms (~10 ms during the first second) from <code>CovetDataSource.GetStatistics()</code>.</div>"
                : run.Samples.Any(s => s.Total is not null)
                    ? "<div class=\"note\">Physical connections from the provider's own metrics; waiting = callers inside <code>OpenAsync</code> (counted by the load tester).</div>"
                    : "<div class=\"note\">This provider publishes no pool counts: in use = callers holding a connection, waiting = callers inside <code>OpenAsync</code> (both counted by the load tester).</div>");
            TimeSeries(html, run, report.Settings.MaxPoolSize);
        }

        RoundsTable(html, report);
        if (report.WarmUp is { } warmUp)
            html.Append($"<div class=\"note\">Untimed, before the rounds: {E(warmUp.Describe())}.</div>");

        if (report.Notes.Count > 0 || report.Pools.Any(p => p.Memory?.Note is not null))
        {
            html.Append("<h2>Notes</h2><ul class=\"note\">");
            foreach (var note in report.Notes)
                html.Append($"<li>{E(note)}</li>");
            foreach (var pool in report.Pools.Where(p => p.Memory?.Note is not null))
                html.Append($"<li>memory probe ({E(pool.Label)}): {E(pool.Memory!.Note!)}</li>");
            html.Append("</ul>");
        }
        html.Append("<p class=\"note\">Memory: live managed heap right after a full, blocking, compacting collection, before and after ")
            .Append("filling the pool (per pooled connection, provider connection included) and before and after leaving callers blocked in ")
            .Append("<code>OpenAsync</code> on an exhausted pool with a cancellable token (per waiting caller, the caller's own async state ")
            .Append("machine subtracted). Of that total, the caller's connection object (measured by keeping as many unopened ")
            .Append("<code>CreateConnection()</code> results) and the registration on its cancellation token (measured by registering ")
            .Append("a fresh token as many times) are costs any pool has; the rest is the pool's own.</p>");
        html.Append("</body></html>\n");
        return html.ToString();
    }

    private static void SummaryTable(StringBuilder html, LoadTestReport report)
    {
        html.Append("<h2>Summary</h2><table><tr><th>metric</th>");
        foreach (var pool in report.Pools)
            html.Append($"<th>{E(pool.Label)}</th>");
        if (report.Ratios is not null)
            html.Append("<th>Covet ÷ provider</th>");
        html.Append("</tr>");
        foreach (var row in ReportRows.Build(report))
        {
            html.Append(row.IsPart ? $"<tr><td class=\"part\">{E(row.Metric)}</td>" : $"<tr><td>{E(row.Metric)}</td>");
            foreach (var value in row.Values)
                html.Append($"<td>{E(value)}</td>");
            if (report.Ratios is not null)
            {
                var css = row.Ratio is null ? "" : Verdict(row.Ratio) switch { true => "good", false => "bad", null => "" };
                html.Append($"<td class=\"{css}\">{(row.Ratio is null ? "" : E(Ratio(row.Ratio.CovetOverProvider)))}</td>");
            }
            html.Append("</tr>");
        }
        html.Append("</table>");
        if (report.Ratios is not null)
            html.Append("<div class=\"note\">Ratios are Covet ÷ provider: above 1 is better for throughput, below 1 for times and memory.</div>");
    }

    private static void RoundsTable(StringBuilder html, LoadTestReport report)
    {
        html.Append("<h2>Rounds</h2><table><tr><th>pool</th><th>round</th><th>ops</th><th>errors</th><th>time</th><th>ops/s</th>")
            .Append("<th>acquire p50</th><th>acquire p99</th><th>acquire max</th><th>use p50</th><th>peak physical</th></tr>");
        foreach (var run in report.Runs)
        {
            html.Append($"<tr><td>{E(run.Label)}</td><td>{run.Round}</td><td>{Count(run.Succeeded)}</td><td>{Count(run.Failed + run.AcquireTimeouts)}</td>")
                .Append($"<td>{Seconds(run.ElapsedSeconds)}</td><td>{Rate(run.ThroughputOpsPerSecond)}</td><td>{Ms(run.Acquire.P50Ms)}</td>")
                .Append($"<td>{Ms(run.Acquire.P99Ms)}</td><td>{Ms(run.Acquire.MaxMs)}</td><td>{Ms(run.Use.P50Ms)}</td>")
                .Append($"<td>{(run.PeakPhysicalConnections is { } p ? Count(p) : "n/a")}</td></tr>");
        }
        html.Append("</table>");
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Histogram: grouped bars, one colour per pool, on a log time axis.

    private static void Histogram(StringBuilder html, IReadOnlyList<PoolSummary> pools)
    {
        const double width = 1060, height = 340, left = 56, right = 16, top = 34, bottom = 44;
        var plotW = width - left - right;
        var plotH = height - top - bottom;
        var buckets = pools.FirstOrDefault()?.AcquireHistogram ?? [];
        if (buckets.Count == 0 || pools.All(p => p.Acquire.Count == 0))
        {
            html.Append("<p class=\"note\">No successful acquire to draw.</p>");
            return;
        }

        var logMin = Math.Log10(buckets[0].FromMs);
        var logMax = Math.Log10(buckets[^1].ToMs);
        double X(double ms) => left + (Math.Log10(Math.Max(ms, buckets[0].FromMs)) - logMin) / (logMax - logMin) * plotW;
        var shares = pools.Select(p => p.AcquireHistogram.Select(b => p.Acquire.Count == 0 ? 0 : 100.0 * b.Count / p.Acquire.Count).ToArray()).ToList();
        var yMax = NiceCeiling(shares.SelectMany(s => s).DefaultIfEmpty(1).Max());
        double Y(double percent) => top + plotH - percent / yMax * plotH;

        var svg = new StringBuilder();
        svg.Append($"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{F(width)}\" height=\"{F(height)}\" viewBox=\"0 0 {F(width)} {F(height)}\">");
        // Horizontal grid and y labels.
        foreach (var tick in Ticks(yMax))
        {
            svg.Append($"<line x1=\"{F(left)}\" x2=\"{F(left + plotW)}\" y1=\"{F(Y(tick))}\" y2=\"{F(Y(tick))}\" stroke=\"#e5e7eb\"/>");
            svg.Append($"<text x=\"{F(left - 6)}\" y=\"{F(Y(tick) + 4)}\" text-anchor=\"end\">{F(tick)}%</text>");
        }
        // Decade labels on the x axis.
        for (var decade = Math.Ceiling(logMin); decade <= Math.Floor(logMax); decade++)
        {
            var x = X(Math.Pow(10, decade));
            svg.Append($"<line x1=\"{F(x)}\" x2=\"{F(x)}\" y1=\"{F(top)}\" y2=\"{F(top + plotH + 4)}\" stroke=\"#e5e7eb\"/>");
            svg.Append($"<text x=\"{F(x)}\" y=\"{F(top + plotH + 17)}\" text-anchor=\"middle\">{E(Duration(Math.Pow(10, decade)))}</text>");
        }
        // Bars.
        for (var b = 0; b < buckets.Count; b++)
        {
            var x0 = X(buckets[b].FromMs);
            var slot = (X(buckets[b].ToMs) - x0) / pools.Count;
            for (var p = 0; p < pools.Count; p++)
            {
                var share = shares[p][b];
                if (share <= 0)
                    continue;
                var count = pools[p].AcquireHistogram[b].Count;
                svg.Append($"<rect x=\"{F(x0 + p * slot + 0.5)}\" y=\"{F(Y(share))}\" width=\"{F(Math.Max(slot - 1, 0.5))}\" height=\"{F(top + plotH - Y(share))}\" fill=\"{PoolColours[p % PoolColours.Length]}\" fill-opacity=\"0.85\">")
                    .Append($"<title>{E(pools[p].Label)}: {Count(count)} ops ({share:0.##}%) between {E(Duration(buckets[b].FromMs))} and {E(Duration(buckets[b].ToMs))}</title></rect>");
            }
        }
        // Percentile markers.
        for (var p = 0; p < pools.Count; p++)
        {
            var colour = PoolColours[p % PoolColours.Length];
            var markers = new[] { ("p50", pools[p].Acquire.P50Ms), ("p99", pools[p].Acquire.P99Ms) };
            for (var i = 0; i < markers.Length; i++)
            {
                var (name, ms) = markers[i];
                var x = X(ms);
                var y = top + 10 + (2 * p + i) * 12; // one row per label, so labels of close markers do not overlap
                var nearRightEdge = x > left + plotW - 90;
                svg.Append($"<line x1=\"{F(x)}\" x2=\"{F(x)}\" y1=\"{F(top)}\" y2=\"{F(top + plotH)}\" stroke=\"{colour}\" stroke-dasharray=\"5,4\" stroke-width=\"1.5\"/>");
                svg.Append($"<text x=\"{F(nearRightEdge ? x - 3 : x + 3)}\" y=\"{F(y)}\" text-anchor=\"{(nearRightEdge ? "end" : "start")}\" fill=\"{colour}\" style=\"fill:{colour}\">{name} {E(Duration(ms))}</text>");
            }
        }
        // Axes, titles and legend.
        svg.Append($"<line x1=\"{F(left)}\" x2=\"{F(left + plotW)}\" y1=\"{F(top + plotH)}\" y2=\"{F(top + plotH)}\" stroke=\"#6b7280\"/>");
        svg.Append($"<text x=\"{F(left + plotW / 2)}\" y=\"{F(height - 6)}\" text-anchor=\"middle\">acquire latency (log scale)</text>");
        svg.Append($"<text x=\"14\" y=\"{F(top + plotH / 2)}\" text-anchor=\"middle\" transform=\"rotate(-90 14 {F(top + plotH / 2)})\">share of operations</text>");
        Legend(svg, left, 16, pools.Select((p, i) => (p.Label, PoolColours[i % PoolColours.Length], false)).ToList());
        svg.Append("</svg>");
        html.Append(svg);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Time series: physical / in use / idle on the left axis, waiting callers on the right axis.

    private static void TimeSeries(StringBuilder html, RunResult run, int maxPoolSize)
    {
        const double width = 1060, height = 320, left = 56, right = 64, top = 34, bottom = 40;
        var plotW = width - left - right;
        var plotH = height - top - bottom;
        var samples = run.Samples;
        var tMax = Math.Max(samples[^1].Seconds, 0.001);
        var hasPoolCounts = samples.Any(s => s.Total is not null);

        var series = new List<(string Name, string Colour, Func<PoolSample, double?> Value, bool Right)>();
        if (hasPoolCounts)
        {
            series.Add(("physical (total)", TotalColour, s => s.Total, false));
            series.Add(("in use", "#2563eb", s => s.InUse, false));
            series.Add(("idle", "#16a34a", s => s.Idle, false));
        }
        else
        {
            series.Add(("in use (callers holding)", "#2563eb", s => s.Holding, false));
        }
        var covetWaiting = samples.Any(s => s.Waiting is not null);
        series.Add((covetWaiting ? "waiting (right axis)" : "in OpenAsync (right axis)", "#dc2626", s => covetWaiting ? s.Waiting : s.Opening, true));

        var leftMax = NiceCeiling(Math.Max(maxPoolSize, series.Where(s => !s.Right).SelectMany(s => samples.Select(s.Value)).Max() ?? 1));
        var rightMax = NiceCeiling(Math.Max(1, series.Where(s => s.Right).SelectMany(s => samples.Select(s.Value)).Max() ?? 1));
        double X(double seconds) => left + seconds / tMax * plotW;
        double YL(double v) => top + plotH - v / leftMax * plotH;
        double YR(double v) => top + plotH - v / rightMax * plotH;

        var svg = new StringBuilder();
        svg.Append($"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{F(width)}\" height=\"{F(height)}\" viewBox=\"0 0 {F(width)} {F(height)}\">");
        foreach (var tick in Ticks(leftMax))
        {
            svg.Append($"<line x1=\"{F(left)}\" x2=\"{F(left + plotW)}\" y1=\"{F(YL(tick))}\" y2=\"{F(YL(tick))}\" stroke=\"#e5e7eb\"/>");
            svg.Append($"<text x=\"{F(left - 6)}\" y=\"{F(YL(tick) + 4)}\" text-anchor=\"end\">{F(tick)}</text>");
        }
        foreach (var tick in Ticks(rightMax))
            svg.Append($"<text x=\"{F(left + plotW + 6)}\" y=\"{F(YR(tick) + 4)}\" fill=\"#dc2626\" style=\"fill:#dc2626\">{F(tick)}</text>");
        foreach (var tick in Ticks(NiceCeiling(tMax)).Where(t => t <= tMax * 1.0001))
        {
            svg.Append($"<line x1=\"{F(X(tick))}\" x2=\"{F(X(tick))}\" y1=\"{F(top + plotH)}\" y2=\"{F(top + plotH + 4)}\" stroke=\"#6b7280\"/>");
            svg.Append($"<text x=\"{F(X(tick))}\" y=\"{F(top + plotH + 16)}\" text-anchor=\"middle\">{F(tick)} s</text>");
        }
        // Configured maximum.
        svg.Append($"<line x1=\"{F(left)}\" x2=\"{F(left + plotW)}\" y1=\"{F(YL(maxPoolSize))}\" y2=\"{F(YL(maxPoolSize))}\" stroke=\"#9ca3af\" stroke-dasharray=\"2,3\"/>");
        svg.Append($"<text x=\"{F(left + 4)}\" y=\"{F(YL(maxPoolSize) - 4)}\">max pool size {maxPoolSize}</text>");

        foreach (var (_, colour, value, onRight) in series)
        {
            var points = new StringBuilder();
            double? previousY = null;
            foreach (var sample in samples)
            {
                if (value(sample) is not { } v)
                    continue;
                var x = X(sample.Seconds);
                var y = onRight ? YR(v) : YL(v);
                if (previousY is { } py)
                    points.Append($"{F(x)},{F(py)} "); // step line: a count holds until the next sample
                points.Append($"{F(x)},{F(y)} ");
                previousY = y;
            }
            // The total is drawn wide and pale underneath, so it stays visible where "in use" covers it.
            var style = colour == TotalColour ? "stroke-width=\"5\" stroke-opacity=\"0.3\"" : "stroke-width=\"1.8\"";
            svg.Append($"<polyline fill=\"none\" stroke=\"{colour}\" {style} points=\"{points}\"/>");
        }
        svg.Append($"<line x1=\"{F(left)}\" x2=\"{F(left + plotW)}\" y1=\"{F(top + plotH)}\" y2=\"{F(top + plotH)}\" stroke=\"#6b7280\"/>");
        svg.Append($"<text x=\"{F(left + plotW / 2)}\" y=\"{F(height - 6)}\" text-anchor=\"middle\">time since the callers were released</text>");
        svg.Append($"<text x=\"14\" y=\"{F(top + plotH / 2)}\" text-anchor=\"middle\" transform=\"rotate(-90 14 {F(top + plotH / 2)})\">connections</text>");
        svg.Append($"<text x=\"{F(width - 10)}\" y=\"{F(top + plotH / 2)}\" text-anchor=\"middle\" fill=\"#dc2626\" style=\"fill:#dc2626\" transform=\"rotate(90 {F(width - 10)} {F(top + plotH / 2)})\">callers</text>");
        Legend(svg, left, 16, series.Select(s => (s.Name, s.Colour, true)).ToList());
        svg.Append("</svg>");
        html.Append(svg);
    }

    private static void Legend(StringBuilder svg, double x, double y, IReadOnlyList<(string Name, string Colour, bool Line)> entries)
    {
        foreach (var (name, colour, line) in entries)
        {
            svg.Append(line
                ? $"<line x1=\"{F(x)}\" x2=\"{F(x + 18)}\" y1=\"{F(y - 4)}\" y2=\"{F(y - 4)}\" stroke=\"{colour}\" stroke-width=\"2.5\"/>"
                : $"<rect x=\"{F(x)}\" y=\"{F(y - 10)}\" width=\"14\" height=\"10\" fill=\"{colour}\"/>");
            svg.Append($"<text x=\"{F(x + 22)}\" y=\"{F(y)}\">{E(name)}</text>");
            x += 34 + name.Length * 6.2;
        }
    }

    /// <summary>1, 2 or 5 × a power of ten, at least <paramref name="value"/>.</summary>
    private static double NiceCeiling(double value)
    {
        if (value <= 0)
            return 1;
        var magnitude = Math.Pow(10, Math.Floor(Math.Log10(value)));
        foreach (var step in new[] { 1.0, 2, 2.5, 5, 10 })
        {
            if (step * magnitude >= value - 1e-9)
                return step * magnitude;
        }
        return 10 * magnitude;
    }

    /// <summary>About five round ticks from 0 to <paramref name="max"/>.</summary>
    private static IEnumerable<double> Ticks(double max)
    {
        var step = NiceCeiling(max / 5);
        for (var t = 0.0; t <= max + step * 1e-6; t += step)
            yield return Math.Round(t, 6);
    }

    private static string E(string text) => WebUtility.HtmlEncode(text);
}
