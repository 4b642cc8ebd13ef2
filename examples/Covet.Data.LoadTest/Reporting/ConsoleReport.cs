using Spectre.Console;

namespace Covet.Data.LoadTest.Reporting;

/// <summary>The final report on the console: one table (metrics × pools, plus ratios when comparing), errors and notes.</summary>
public static class ConsoleReport
{
    public static void Write(LoadTestReport report, IAnsiConsole console)
    {
        console.WriteLine();
        console.MarkupLine($"[bold]Covet.Data load test[/] · {Markup.Escape(report.Provider)} · {Markup.Escape(report.ConnectionString)}");
        console.MarkupLine(Markup.Escape(report.Description));
        console.MarkupLine($"[grey]{report.Machine.ProcessorCount} cores · {Markup.Escape(report.Machine.Runtime)} · {Markup.Escape(report.Machine.OperatingSystem)}[/]");

        var table = new Table().Border(TableBorder.Rounded).AddColumn("metric");
        foreach (var pool in report.Pools)
            table.AddColumn(new TableColumn(Markup.Escape(pool.Label)).RightAligned());
        var comparing = report.Ratios is not null;
        if (comparing)
            table.AddColumn(new TableColumn("Covet ÷ provider").RightAligned());

        foreach (var row in ReportRows.Build(report))
        {
            var cells = new List<string> { row.IsPart ? "  " + Markup.Escape(row.Metric) : Markup.Escape(row.Metric) };
            cells.AddRange(row.Values.Select(Markup.Escape));
            if (comparing)
                cells.Add(row.Ratio is { } r ? Colour(r) : "");
            table.AddRow(cells.ToArray());
        }
        console.Write(table);

        foreach (var pool in report.Pools.Where(p => p.Errors.Count > 0))
        {
            console.MarkupLine($"[yellow]Errors ({Markup.Escape(pool.Label)}):[/]");
            foreach (var (message, count) in pool.Errors.OrderByDescending(e => e.Value).Take(8))
                console.MarkupLine($"  {count,8:N0} × {Markup.Escape(message)}");
        }
        foreach (var pool in report.Pools.Where(p => p.Memory?.Note is not null))
            console.MarkupLine($"[grey]memory probe ({Markup.Escape(pool.Label)}): {Markup.Escape(pool.Memory!.Note!)}[/]");
        if (report.WarmUp is { } warmUp)
            console.MarkupLine($"[grey]{Markup.Escape(warmUp.Describe())}[/]");
        foreach (var note in report.Notes)
            console.MarkupLine($"[grey]note: {Markup.Escape(note)}[/]");
        if (comparing)
            console.MarkupLine("[grey]Ratios are Covet ÷ provider: above 1 is better for throughput, below 1 is better for times and memory.[/]");

        if (report.Failed)
        {
            foreach (var failure in report.Failures)
                console.MarkupLine($"[red]FAILED:[/] {Markup.Escape(failure)}");
        }
        else
        {
            console.MarkupLine("[green]OK:[/] no operation failed.");
        }
    }

    private static string Colour(Ratio ratio)
    {
        var text = Markup.Escape(Format.Ratio(ratio.CovetOverProvider));
        return Format.Verdict(ratio) switch
        {
            true => $"[green]{text}[/]",
            false => $"[red]{text}[/]",
            null => text,
        };
    }
}
