using Covet.Data.LoadTest.Scenarios;
using Spectre.Console;

namespace Covet.Data.LoadTest.Reporting;

/// <summary>One side of a <c>--pools N</c> measurement, from its own child process.</summary>
public sealed record ManyPoolsResult
{
    public required PoolKind Pool { get; init; }
    public required string Label { get; init; }
    /// <summary>Pools created (one connection string, one SQLite file, one open → close each).</summary>
    public required int Pools { get; init; }
    /// <summary>Wall time of the idle period, measured.</summary>
    public required double IdleSeconds { get; init; }
    /// <summary>Process CPU time (user + system) burned during the idle period.</summary>
    public required double IdleCpuMs { get; init; }
    /// <summary>Wall time of the steady part of the idle period (from <see cref="ManyPools.Settle"/> on).</summary>
    public required double SteadySeconds { get; init; }
    /// <summary>Process CPU time burned during the steady part.</summary>
    public required double SteadyCpuMs { get; init; }
    /// <summary>Live managed bytes added by the pools, per pool (its idle physical connection included).</summary>
    public required double BytesPerPool { get; init; }
    public required long HeapBytesBefore { get; init; }
    public required long HeapBytesAfter { get; init; }
    /// <summary>Threads of the child process during the idle period.</summary>
    public required int Threads { get; init; }
    /// <summary>Time to open and close the N connections (and the two heap measurements).</summary>
    public required double SetupSeconds { get; init; }

    /// <summary>Idle CPU scaled to 10 s, the unit.</summary>
    public double IdleCpuMsPer10Seconds => IdleSeconds > 0 ? IdleCpuMs * 10 / IdleSeconds : 0;

    /// <summary>Steady idle CPU scaled to 10 s.</summary>
    public double SteadyCpuMsPer10Seconds => SteadySeconds > 0 ? SteadyCpuMs * 10 / SteadySeconds : 0;
}

/// <summary>The whole <c>--pools</c> run; serialised as-is by <c>--json</c>.</summary>
public sealed record ManyPoolsReport
{
    public required string Tool { get; init; }
    public required DateTimeOffset StartedAt { get; init; }
    public required int ProcessorCount { get; init; }
    public required string Runtime { get; init; }
    public required double IdleSeconds { get; init; }
    public required IReadOnlyList<ManyPoolsResult> Results { get; init; }

    /// <summary>Idle CPU per 10 s below which no ratio is given (the process is idle to within the measurement).</summary>
    public const double CpuFloorMs = 10;

    /// <summary>Covet ÷ provider of idle CPU and of memory per pool, per pool count.</summary>
    public IReadOnlyList<ManyPoolsRatio> Ratios => Results.GroupBy(r => r.Pools).Select(g =>
    {
        var covet = g.FirstOrDefault(r => r.Pool == PoolKind.Covet);
        var provider = g.FirstOrDefault(r => r.Pool == PoolKind.Provider);
        // Below CpuFloorMs per 10 s a process is idle to within the clock's granularity: a ratio to that is noise.
        static double? Cpu(double covet, double provider) => provider >= CpuFloorMs ? covet / provider : null;
        return new ManyPoolsRatio(g.Key,
            covet is not null && provider is not null ? Cpu(covet.IdleCpuMsPer10Seconds, provider.IdleCpuMsPer10Seconds) : null,
            covet is not null && provider is not null ? Cpu(covet.SteadyCpuMsPer10Seconds, provider.SteadyCpuMsPer10Seconds) : null,
            covet is not null && provider is not null ? covet.SteadyCpuMsPer10Seconds - provider.SteadyCpuMsPer10Seconds : null,
            covet is not null && provider is { BytesPerPool: > 0 } ? covet.BytesPerPool / provider.BytesPerPool : null,
            covet is not null && provider is not null ? covet.BytesPerPool - provider.BytesPerPool : null);
    }).ToList();

    /// <summary>The table on the console: one row per pool count and side, with Covet ÷ provider ratios.</summary>
    public void Write(IAnsiConsole console)
    {
        console.WriteLine();
        console.MarkupLine($"[bold]Many idle pools[/] · SQLite, one file per pool, one open → close each, then {IdleSeconds:0.#} s idle · " +
            $"{ProcessorCount} cores · {Markup.Escape(Runtime)} · each side in a fresh process");
        var table = new Table().Border(TableBorder.Rounded)
            .AddColumn("pools").AddColumn("pool")
            .AddColumn(new TableColumn("idle CPU per 10 s").RightAligned())
            .AddColumn(new TableColumn("of it steady, per 10 s").RightAligned())
            .AddColumn(new TableColumn("managed memory per pool").RightAligned())
            .AddColumn(new TableColumn("threads").RightAligned())
            .AddColumn(new TableColumn("setup").RightAligned());
        var ratios = Ratios.ToDictionary(r => r.Pools);
        foreach (var group in Results.GroupBy(r => r.Pools))
        {
            foreach (var r in group)
                table.AddRow(Format.Count(r.Pools), Markup.Escape(r.Label), $"{r.IdleCpuMsPer10Seconds:N0} ms", $"{r.SteadyCpuMsPer10Seconds:N0} ms", Format.Bytes(r.BytesPerPool),
                    Format.Count(r.Threads), Format.Seconds(r.SetupSeconds));
            var ratio = ratios[group.Key];
            static string Cpu(double? r) => r is null ? "provider ≈ 0" : Format.Ratio(r);
            table.AddRow("", "[bold]Covet ÷ provider[/]", Cpu(ratio.IdleCpu),
                Cpu(ratio.SteadyCpu) + (ratio.ExtraSteadyCpuMs is { } cpu ? $" (+{cpu:N0} ms)" : ""), Format.Ratio(ratio.MemoryPerPool) +
                (ratio.ExtraBytesPerPool is { } extra ? $" (+{Format.Bytes(extra)})" : ""), "", "");
        }
        console.Write(table);
        console.MarkupLine($"[grey]Idle CPU: the process's user + system time over the whole idle window right after the setup (as issue 12 measured " +
            $"it: it includes the JIT's background compilations and finalizers the setup left behind) and over its part from {ManyPools.Settle.TotalSeconds:0} s on " +
            "(steady: what idle pools cost in the long run), both scaled to 10 s. Memory: live managed heap after a full compacting GC, before and " +
            "after the N open → close, per pool, its idle connection included.[/]");
        console.MarkupLine("[grey]Targets (issue 12): idle CPU ≤ 1.5× the provider's; ≤ 4 KiB of managed memory per pool beyond its connections " +
            "(the \"+\" figure: Covet's per-pool memory less the provider's, whose per pool is essentially its idle connection).[/]");
    }
}

/// <param name="IdleCpu">Covet's idle CPU over the whole window ÷ the provider's (null below the floor).</param>
/// <param name="SteadyCpu">Covet's steady idle CPU ÷ the provider's (null when the provider's is below <see cref="ManyPoolsReport.CpuFloorMs"/>).</param>
/// <param name="ExtraSteadyCpuMs">Covet's steady idle CPU per 10 s less the provider's.</param>
/// <param name="MemoryPerPool">Covet's managed memory per pool ÷ the provider's.</param>
/// <param name="ExtraBytesPerPool">Covet's managed memory per pool less the provider's.</param>
public sealed record ManyPoolsRatio(int Pools, double? IdleCpu, double? SteadyCpu, double? ExtraSteadyCpuMs, double? MemoryPerPool, double? ExtraBytesPerPool);
