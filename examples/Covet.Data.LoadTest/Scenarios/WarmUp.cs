using System.Diagnostics;
using Covet.Data.LoadTest.Progress;
using Covet.Data.LoadTest.Reporting;

namespace Covet.Data.LoadTest.Scenarios;

/// <summary>
/// The untimed warm-up before the timed rounds: short rounds of the scenario itself, on each pool in turn, until each
/// pool's throughput has settled, so no timed round pays for the process's JIT warm-up.
/// </summary>
/// <remarks>
/// Both pools run in one process and share most of the code under load (Dapper, the driver, the thread pool): whichever
/// pool runs first pays for tier-0 code, tiered-PGO instrumentation and the first tier-1 compilations, and a few
/// iterations are not enough for those to finish (on PostgreSQL Covet's first two rounds ran at 9–12k ops/s against the
/// provider's 16–18k). So each warm-up round is the real scenario — same callers, same statement, same hold — cut to
/// <see cref="Slice"/> (an <c>--extreme</c> burst is run whole), on a fresh pool like a timed round; rounds alternate
/// between the pools (the order swapped every round), and a pool stops warming up once two consecutive rounds, after
/// at least <see cref="MinRounds"/>, differ in throughput (over each round's second half, past the fresh pool's
/// connection opening) by less than <see cref="Tolerance"/>. The whole warm-up is
/// bounded by <see cref="LoadTestSettings.WarmUpBudget"/>: on a noisy machine throughput may never settle that
/// closely, and the report then says so.
/// </remarks>
public sealed class WarmUp(LoadTestSettings settings, ProviderProfile profile, Workload workload, IProgressSink progress)
{
    /// <summary>Length of one warm-up round of a duration- or count-bound scenario.</summary>
    public static readonly TimeSpan Slice = TimeSpan.FromSeconds(1);

    /// <summary>Relative change of throughput between two consecutive rounds below which a pool counts as warm.</summary>
    public const double Tolerance = 0.05;

    /// <summary>Rounds each pool runs at least (the first always pays for its own connections and first calls).</summary>
    public const int MinRounds = 3;

    /// <summary>
    /// Operations per second over the second half of a round, from the sampler's counts: the first half of a round on a
    /// fresh pool also opens its connections, which on a server is a good part of a 1-s round and varies from round to
    /// round far more than the code's speed does.
    /// </summary>
    private static double SecondHalfThroughput(RunResult run)
    {
        var within = run.Samples.Where(s => s.Seconds <= run.ElapsedSeconds).ToList();
        var middle = within.FirstOrDefault(s => s.Seconds >= run.ElapsedSeconds / 2);
        if (middle is null || within[^1].Seconds - middle.Seconds < run.ElapsedSeconds / 4)
            return run.ThroughputOpsPerSecond;
        return (within[^1].Completed - middle.Completed) / (within[^1].Seconds - middle.Seconds);
    }

    public async Task<WarmUpSummary> RunAsync(IReadOnlyList<PoolKind> kinds, PoolSettings poolSettings, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var rounds = new List<WarmUpRound>();
        var settled = kinds.ToDictionary(k => k, _ => false);
        var shape = settings.Scenario == ScenarioKind.Extreme
            ? new Workload.Shape(settings.Callers, 1, null)
            : new Workload.Shape(settings.Callers, settings.Iterations, Slice);

        for (var round = 1; !cancellationToken.IsCancellationRequested && clock.Elapsed < settings.WarmUpBudget; round++)
        {
            var order = round % 2 == 1 ? kinds : kinds.AsEnumerable().Reverse().ToList();
            foreach (var kind in order.Where(k => !settled[k]))
            {
                if (cancellationToken.IsCancellationRequested || clock.Elapsed >= settings.WarmUpBudget)
                    break;
                await using var pool = PoolUnderTest.Create(profile, kind, poolSettings);
                RunResult run;
                using (var phase = progress.Begin($"warm-up ({pool.Label}, round {round})", shape.Duration?.TotalSeconds ?? shape.Callers))
                    run = await workload.RunAsync(pool, shape, -round, phase, cancellationToken);
                var throughput = shape.Duration is null ? run.ThroughputOpsPerSecond : SecondHalfThroughput(run);
                var previous = rounds.LastOrDefault(r => r.Pool == kind);
                var change = previous is { OpsPerSecond: > 0 } p && throughput > 0
                    ? Math.Abs(throughput - p.OpsPerSecond) / Math.Max(throughput, p.OpsPerSecond)
                    : (double?)null;
                rounds.Add(new WarmUpRound(kind, pool.Label, round, throughput, run.ElapsedSeconds, change, run.Failed + run.AcquireTimeouts));
                settled[kind] = rounds.Count(r => r.Pool == kind) >= MinRounds && change < Tolerance;
            }
            if (settled.Values.All(s => s))
                break;
            GC.Collect();
        }

        var summary = new WarmUpSummary(rounds, clock.Elapsed.TotalSeconds, settings.WarmUpBudget.TotalSeconds, Tolerance,
            kinds.Where(k => !settled[k]).Select(k => rounds.FirstOrDefault(r => r.Pool == k)?.Label ?? k.ToString()).ToList());
        progress.Message(summary.Describe());
        return summary;
    }
}
