using System.Runtime;
using System.Runtime.InteropServices;
using Covet.Data.LoadTest.Measurement;
using Covet.Data.LoadTest.Progress;
using Covet.Data.LoadTest.Reporting;

namespace Covet.Data.LoadTest.Scenarios;

/// <summary>
/// Runs a whole invocation: an untimed warm-up of each pool until its throughput settles (<see cref="WarmUp"/>), the
/// timed rounds (when comparing, Covet, provider / provider, Covet / …, the order swapped every round, each round on a
/// fresh pool), then the memory probe of each pool; and combines it all into a report.
/// </summary>
public sealed class ScenarioRunner(LoadTestSettings settings, ProviderProfile profile, IProgressSink progress)
{
    public async Task<LoadTestReport> RunAsync(CancellationToken cancellationToken)
    {
        var startedAt = DateTimeOffset.Now;
        PoolKind[] kinds = settings.Compare ? [PoolKind.Covet, PoolKind.Provider] : [PoolKind.Covet];
        var poolSettings = new PoolSettings(settings.MaxPoolSize, settings.MinPoolSize, settings.AcquireTimeout);
        var workload = new Workload(profile, settings);
        var shape = new Workload.Shape(settings.Callers, settings.Iterations, settings.Duration);
        var runs = new List<RunResult>();
        var memory = new Dictionary<PoolKind, MemoryProbeResult>();
        WarmUpSummary? warmUp = null;

        await progress.RunAsync(async () =>
        {
            // Warm-up until each pool's throughput settles (see WarmUp), so no timed round pays for the shared JIT warm-up.
            if (settings.WarmUpBudget > TimeSpan.Zero)
                warmUp = await new WarmUp(settings, profile, workload, progress).RunAsync(kinds, poolSettings, cancellationToken);

            for (var round = 1; round <= settings.Rounds && !cancellationToken.IsCancellationRequested; round++)
            {
                // Which pool goes first alternates: Covet, provider / provider, Covet / … What little drift is left after
                // the warm-up (a late tier-1 compilation, the server's caches, a noisy neighbour) falls on both alike.
                var order = round % 2 == 1 ? kinds : kinds.Reverse().ToArray();
                foreach (var kind in order)
                {
                    if (cancellationToken.IsCancellationRequested)
                        break;
                    await using var pool = PoolUnderTest.Create(profile, kind, poolSettings);
                    var title = settings.Rounds > 1 ? $"{pool.Label}, round {round}/{settings.Rounds}" : pool.Label;
                    var max = settings.Duration?.TotalSeconds ?? settings.ExpectedOperations ?? 1;
                    using var phase = progress.Begin(title, max);
                    runs.Add(await workload.RunAsync(pool, shape, round, phase, cancellationToken));
                }
                ForceCollection(); // the next round starts with a clean heap
            }

            foreach (var kind in kinds)
            {
                if (cancellationToken.IsCancellationRequested)
                    break;
                var label = kind == PoolKind.Covet ? "Covet" : profile.ProviderPoolLabel;
                using var phase = progress.Begin($"memory probe ({label}, {settings.ProbeWaiters:N0} waiters)", 4);
                memory[kind] = await new MemoryProbe(profile, settings).RunAsync(kind, phase, cancellationToken);
            }
        });

        return Build(startedAt, kinds, runs, memory, warmUp);
    }

    private LoadTestReport Build(DateTimeOffset startedAt, PoolKind[] kinds, List<RunResult> runs, Dictionary<PoolKind, MemoryProbeResult> memory, WarmUpSummary? warmUp)
    {
        var merged = kinds.ToDictionary(k => k, k =>
        {
            var acquire = new LatencyRecorder();
            var use = new LatencyRecorder();
            foreach (var run in runs.Where(r => r.Pool == k))
            {
                acquire.AddAll(run.AcquireSamples);
                use.AddAll(run.UseSamples);
            }
            return (acquire, use);
        });
        var edges = LatencyHistogram.Edges(merged.Values.Select(m => m.acquire.Sorted()));

        var pools = kinds.Select(kind =>
        {
            var mine = runs.Where(r => r.Pool == kind).ToList();
            var (acquire, use) = merged[kind];
            var covet = kind == PoolKind.Covet;
            var errors = mine.SelectMany(r => r.Errors).GroupBy(e => e.Key).ToDictionary(g => g.Key, g => g.Sum(e => e.Value));
            return new PoolSummary
            {
                Pool = kind,
                Label = covet ? "Covet" : profile.ProviderPoolLabel,
                Rounds = mine.Count,
                Operations = mine.Sum(r => r.Operations),
                Succeeded = mine.Sum(r => r.Succeeded),
                Failed = mine.Sum(r => r.Failed),
                AcquireTimeouts = mine.Sum(r => r.AcquireTimeouts),
                Cancelled = mine.Sum(r => r.Cancelled),
                ElapsedSeconds = mine.Sum(r => r.ElapsedSeconds),
                RoundSeconds = mine.Select(r => r.ElapsedSeconds).ToList(),
                Acquire = acquire.Summarize(),
                Use = use.Summarize(),
                PeakPhysicalConnections = mine.Max(r => r.PeakPhysicalConnections),
                PeakCallersOpening = mine.Count == 0 ? 0 : mine.Max(r => r.PeakCallersOpening),
                ConnectionsCreated = covet ? mine.Sum(r => r.PoolStatistics?.ConnectionsCreated ?? 0) : null,
                LeaksDetected = covet ? mine.Sum(r => r.PoolStatistics?.LeaksDetected ?? 0) : null,
                PoolReportedAcquireTimeouts = covet ? mine.Sum(r => r.PoolStatistics?.AcquireTimeouts ?? 0) : null,
                LastRoundStatistics = mine.LastOrDefault()?.PoolStatistics,
                Drained = covet ? mine.All(r => r.Drained != false) : null,
                Memory = memory.GetValueOrDefault(kind),
                Errors = errors,
                AcquireHistogram = LatencyHistogram.Count(acquire.Sorted(), edges),
            };
        }).ToList();

        var failures = new List<string>();
        foreach (var pool in pools)
        {
            if (pool.Failed > 0)
                failures.Add($"{pool.Label}: {pool.Failed:N0} operations failed");
            if (pool.AcquireTimeouts > 0 && !settings.AllowTimeouts)
                failures.Add($"{pool.Label}: {pool.AcquireTimeouts:N0} acquire timeouts (pass --allow-timeouts if they are expected)");
            if (pool.LeaksDetected > 0)
                failures.Add($"{pool.Label}: {pool.LeaksDetected:N0} leaks reported, but every connection was closed");
            if (pool.Drained == false)
                failures.Add($"{pool.Label}: the pool still showed connections in use or callers waiting after the load stopped");
            if (pool.Memory is { Errors: > 0 } m)
                failures.Add($"{pool.Label}: {m.Errors:N0} memory-probe waiters failed");
        }

        var notes = new List<string>(settings.Compare ? profile.Notes : []);
        if (settings.Provider == ProviderKind.Sqlite && settings.ConnectionString is null)
            notes.Add("Embedded SQLite in a temporary file: no network, so this measures pool overhead, not a database.");

        return new LoadTestReport
        {
            Tool = "Covet.Data.LoadTest",
            StartedAt = startedAt,
            Machine = new MachineInfo(Environment.ProcessorCount, RuntimeInformation.OSDescription, RuntimeInformation.FrameworkDescription, GCSettings.IsServerGC),
            Provider = profile.Name,
            ConnectionString = profile.DisplayConnectionString,
            Scenario = settings.Scenario.ToString().ToLowerInvariant(),
            Description = settings.Describe(),
            Settings = new ScenarioSettings(settings.Callers, settings.Duration is null ? settings.Iterations : null, settings.Duration?.TotalSeconds,
                settings.MaxPoolSize, settings.MinPoolSize, settings.AcquireTimeout.TotalSeconds, settings.Compare, settings.Rounds, settings.Query,
                settings.Hold.TotalMilliseconds, settings.CovetOptions, settings.ProbeWaiters),
            Notes = notes,
            Pools = pools,
            Ratios = settings.Compare && pools.Count == 2 ? Ratios(pools[0], pools[1]) : null,
            Runs = runs,
            WarmUp = warmUp,
            Failed = failures.Count > 0,
            Failures = failures,
        };
    }

    private static List<Ratio> Ratios(PoolSummary covet, PoolSummary provider)
    {
        // Times under a microsecond are at the resolution of the measurement: no ratio of them means anything.
        static Ratio R(string metric, double? c, double? p, bool higherIsBetter, double floor = 0) =>
            new(metric, c, p, c is { } cv && p is { } pv && pv > floor && cv > floor ? cv / pv : null, higherIsBetter);
        return
        [
            R("throughput (ops/s)", covet.ThroughputOpsPerSecond, provider.ThroughputOpsPerSecond, true),
            R("acquire p50 (ms)", covet.Acquire.P50Ms, provider.Acquire.P50Ms, false, 0.001),
            R("acquire p95 (ms)", covet.Acquire.P95Ms, provider.Acquire.P95Ms, false, 0.001),
            R("acquire p99 (ms)", covet.Acquire.P99Ms, provider.Acquire.P99Ms, false, 0.001),
            R("acquire max (ms)", covet.Acquire.MaxMs, provider.Acquire.MaxMs, false, 0.001),
            R("use p50 (ms)", covet.Use.P50Ms, provider.Use.P50Ms, false, 0.001),
            R("use p99 (ms)", covet.Use.P99Ms, provider.Use.P99Ms, false, 0.001),
            R("bytes per pooled connection", covet.Memory?.BytesPerPooledConnection, provider.Memory?.BytesPerPooledConnection, false),
            R("bytes per waiting caller", covet.Memory?.BytesPerWaitingCaller, provider.Memory?.BytesPerWaitingCaller, false),
            R("pool's own bytes per waiting caller", covet.Memory?.PoolBytesPerWaitingCaller, provider.Memory?.PoolBytesPerWaitingCaller, false),
        ];
    }

    private static void ForceCollection()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
    }
}
