using System.Collections.Concurrent;
using System.Diagnostics;

namespace Covet.Data.IntegrationTests.FaultInjection;

/// <summary>
/// Scenario a: the server goes away under load (the proxy resets every connection and refuses new ones), stays away
/// ~1.5 s, and comes back. The circuit breaker must open within ~1 s, reject fast while open, and close again soon
/// after the server is back, without handing out a single dead connection afterwards.
/// </summary>
[TestClass]
public sealed class ServerDownTests
{
    private const int Workers = 16;
    private static readonly TimeSpan AcquireTimeout = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan Outage = TimeSpan.FromSeconds(1.5);

    [TestMethod]
    public Task ServerDownMidLoad_BreakerOpensFailsFastAndRecovers_Postgres() => RunAsync(FaultDb.Postgres);

    [TestMethod]
    public Task ServerDownMidLoad_BreakerOpensFailsFastAndRecovers_MariaDb() => RunAsync(FaultDb.MariaDb);

    private enum Outcome { Ok, CircuitOpen, ProviderError, Exhausted, Other }

    /// <summary>One open + query by one worker: when it started and ended (since the run started), how, and where it failed.</summary>
    private sealed record Op(TimeSpan Start, TimeSpan End, Outcome Outcome, bool FailedAfterOpen, string? Error)
    {
        public TimeSpan Elapsed => End - Start;
    }

    private static async Task RunAsync(FaultDb db)
    {
        await using var rig = FaultRig.Create(db, "down", o =>
        {
            o.MaxPoolSize = 10;
            o.AcquireTimeout = AcquireTimeout;
            o.CircuitBreakerFailureThreshold = 5;
            o.CircuitBreakerBreakDuration = TimeSpan.FromMilliseconds(500);
            o.MaintenanceInterval = TimeSpan.FromMilliseconds(200);
        });
        var startUtc = DateTimeOffset.UtcNow;
        var clock = Stopwatch.StartNew();
        var ops = new ConcurrentQueue<Op>();
        using var stop = new CancellationTokenSource();

        async Task WorkerAsync()
        {
            while (!stop.IsCancellationRequested)
            {
                var start = clock.Elapsed;
                var opened = false;
                try
                {
                    await using var connection = rig.DataSource.CreateConnection();
                    await connection.OpenAsync();
                    opened = true;
                    await using var command = connection.CreateCommand();
                    command.CommandText = "select 1";
                    await command.ExecuteScalarAsync();
                    ops.Enqueue(new Op(start, clock.Elapsed, Outcome.Ok, false, null));
                    await Task.Delay(2);
                }
                catch (Exception e)
                {
                    var outcome = e switch
                    {
                        CovetCircuitOpenException => Outcome.CircuitOpen,
                        CovetPoolExhaustedException => Outcome.Exhausted,
                        _ when db.IsProviderError(e) => Outcome.ProviderError,
                        _ => Outcome.Other,
                    };
                    ops.Enqueue(new Op(start, clock.Elapsed, outcome, opened, $"{e.GetType().Name}: {e.Message}"));
                    await Task.Delay(5); // a client backing off a little, so the rejected loop does not spin
                }
            }
        }

        var workers = Enumerable.Range(0, Workers).Select(_ => Task.Run(WorkerAsync)).ToArray();
        try
        {
            // Healthy load first.
            await Task.Delay(600);
            var statsBefore = rig.Stats;

            // The server dies: every connection is reset, every new one refused.
            var faultAt = clock.Elapsed;
            rig.Proxy.RefuseNew = true;
            var cut = rig.Proxy.CutAll();
            var cutDoneAt = clock.Elapsed;
            var opened = await Measure.UntilAsync(() => rig.Stats.CircuitState == CovetCircuitState.Open, TimeSpan.FromSeconds(3), stepMs: 2);
            var openAt = clock.Elapsed;
            Assert.IsTrue(opened, $"the breaker did not open within 3 s of the failures starting: {Measure.Describe(rig.Stats)}");

            var remaining = Outage - (openAt - faultAt);
            if (remaining > TimeSpan.Zero)
                await Task.Delay(remaining);

            // The server is back.
            var healAt = clock.Elapsed;
            rig.Proxy.RefuseNew = false;
            var closed = await Measure.UntilAsync(() => rig.Stats.CircuitState == CovetCircuitState.Closed, TimeSpan.FromSeconds(5), stepMs: 2);
            var closedAt = clock.Elapsed;
            Assert.IsTrue(closed, $"the breaker did not close within 5 s of the server coming back: {Measure.Describe(rig.Stats)}");
            await Task.Delay(1000); // recovered load

            await stop.CancelAsync();
            await Task.WhenAll(workers).WaitAsync(AcquireTimeout * 2);
            var stats = rig.Stats;

            // ---- figures
            var all = ops.ToArray();
            var closedLog = rig.EventTimes(CovetEvents.CircuitClosed, startUtc).Where(t => t >= healAt - TimeSpan.FromMilliseconds(50)).ToList();
            var probeAt = closedLog.Count > 0 ? closedLog[0] : closedAt;
            var duringOutage = all.Where(o => o.Start >= faultAt && o.Start < healAt).ToArray();
            var rejections = duringOutage.Where(o => o.Outcome == Outcome.CircuitOpen).Select(o => o.Elapsed).ToArray();
            var failures = all.Where(o => o.Outcome != Outcome.Ok).ToArray();
            var firstOkAfterHeal = all.Where(o => o.Outcome == Outcome.Ok && o.Start >= healAt).Select(o => o.End).DefaultIfEmpty(TimeSpan.MaxValue).Min();
            var afterRecovery = all.Where(o => o.Start >= firstOkAfterHeal).ToArray();
            var deadHandedOut = all.Where(o => o.Start >= healAt && o.FailedAfterOpen).ToArray();
            // Started once every connection was already dead: a failed query means a dead connection was handed out
            // (possible only before any borrower has seen an error, inside the alive window; informational).
            var deadDuringOutage = duringOutage.Count(o => o.FailedAfterOpen && o.Start >= cutDoneAt);

            Console.WriteLine($"{db}: {Workers} workers, MaxPoolSize 10, AcquireTimeout {Measure.Ms(AcquireTimeout)}, break 500 ms, maintenance 200 ms");
            Console.WriteLine($"{db}: before the fault: {statsBefore.Checkouts} checkouts, {Measure.Describe(statsBefore)}");
            Console.WriteLine($"{db}: fault at {Measure.Ms(faultAt)} ({cut} connections cut in {Measure.Ms(cutDoneAt - faultAt)}); breaker Open after {Measure.Ms(openAt - faultAt)}");
            Console.WriteLine($"{db}: during the outage: {duringOutage.Length} opens; {rejections.Length} CovetCircuitOpenException {Measure.Summary(rejections)}; " +
                              $"others: {string.Join(", ", duringOutage.Where(o => o.Outcome != Outcome.CircuitOpen).GroupBy(o => o.Outcome).Select(g => $"{g.Key} x{g.Count()} (max {Measure.Ms(g.Max(o => o.Elapsed))})"))}; " +
                              $"opens started after the cut that got a dead connection: {deadDuringOutage}");
            Console.WriteLine($"{db}: server back at {Measure.Ms(healAt)}; circuit closed (log) {Measure.Ms(probeAt - healAt)} later, seen in stats {Measure.Ms(closedAt - healAt)} later; " +
                              $"first successful query {Measure.Ms(firstOkAfterHeal - probeAt)} after the close");
            Console.WriteLine($"{db}: after recovery: {afterRecovery.Length} ops, {afterRecovery.Count(o => o.Outcome != Outcome.Ok)} failed; " +
                              $"dead connections handed out after the heal: {deadHandedOut.Length}");
            Console.WriteLine($"{db}: longest failed open of the run: {Measure.Ms(failures.Where(o => !o.FailedAfterOpen).Select(o => o.Elapsed).DefaultIfEmpty().Max())}; end: {Measure.Describe(stats)}");
            foreach (var sample in failures.Where(o => o.Start >= probeAt).Take(5))
                Console.WriteLine($"{db}:   failure after the circuit closed, at {Measure.Ms(sample.Start)}: {sample.Outcome} {sample.Error}");

            // ---- behaviour
            Assert.IsTrue(openAt - faultAt <= TimeSpan.FromSeconds(1), $"breaker opened {Measure.Ms(openAt - faultAt)} after the failures started; expected within ~1 s");
            Assert.IsNotEmpty(rejections, "callers were rejected by the open circuit");
            Assert.IsTrue(Measure.Percentile(rejections, 50) < TimeSpan.FromMilliseconds(100), $"rejections must be fast: {Measure.Summary(rejections)}");
            Assert.IsTrue(rejections.Max() < TimeSpan.FromSeconds(1), $"slowest rejection: {Measure.Summary(rejections)}");
            Assert.IsFalse(failures.Any(o => o.Elapsed >= AcquireTimeout * 0.5),
                $"a caller waited {Measure.Ms(failures.Max(o => o.Elapsed))}, close to the acquire timeout {Measure.Ms(AcquireTimeout)}");
            Assert.AreEqual(0, stats.AcquireTimeouts, "no acquire timed out");
            Assert.IsFalse(failures.Any(o => o.Outcome == Outcome.Other), $"unexpected errors: {string.Join("; ", failures.Where(o => o.Outcome == Outcome.Other).Select(o => o.Error).Distinct().Take(3))}");
            Assert.IsTrue(closedAt - healAt <= TimeSpan.FromSeconds(1.5), $"breaker closed {Measure.Ms(closedAt - healAt)} after the server came back");
            Assert.IsTrue(firstOkAfterHeal - probeAt <= TimeSpan.FromSeconds(1), $"first success {Measure.Ms(firstOkAfterHeal - probeAt)} after the circuit closed");
            Assert.IsEmpty(deadHandedOut, $"dead connections handed out after the heal: {string.Join("; ", deadHandedOut.Take(3).Select(o => o.Error))}");
            Assert.IsTrue(afterRecovery.Length > Workers, $"load resumed after recovery ({afterRecovery.Length} ops)");
            Assert.IsTrue(afterRecovery.All(o => o.Outcome == Outcome.Ok),
                $"every open and query after recovery succeeds: {string.Join("; ", afterRecovery.Where(o => o.Outcome != Outcome.Ok).Take(3).Select(o => $"{o.Outcome} {o.Error}"))}");
            Assert.AreEqual(stats.Total, stats.Idle + stats.InUse);
            Assert.AreEqual(0, stats.Waiting);
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(workers).WaitAsync(AcquireTimeout * 2);
        }
    }
}
