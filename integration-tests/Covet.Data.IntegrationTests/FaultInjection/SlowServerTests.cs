using System.Diagnostics;

namespace Covet.Data.IntegrationTests.FaultInjection;

/// <summary>
/// Scenario e: a slow network (20 ms each way through the proxy). The pool's statistics must show it: the use time of a
/// borrower that runs one query is at least the latency, and so is the acquire time when every checkout is pre-pinged;
/// with the default alive window, hot connections skip the ping and acquiring stays well under the latency.
/// </summary>
[TestClass]
public sealed class SlowServerTests
{
    private const int Iterations = 20;
    private static readonly TimeSpan Latency = TimeSpan.FromMilliseconds(20);

    [TestMethod]
    public Task SlowServer_StatisticsReflectTheLatency_Postgres() => RunAsync(FaultDb.Postgres);

    [TestMethod]
    public Task SlowServer_StatisticsReflectTheLatency_MariaDb() => RunAsync(FaultDb.MariaDb);

    private static async Task RunAsync(FaultDb db)
    {
        // Every checkout pre-pinged (alive window 0): acquiring costs a round trip.
        var (pinged, pingedClient) = await LoopAsync(db, "slow-ping", TimeSpan.Zero);
        // Default alive window (500 ms): connections used a moment ago are handed out without a round trip.
        var (hot, hotClient) = await LoopAsync(db, "slow-hot", TimeSpan.FromMilliseconds(500));

        Console.WriteLine($"{db}: proxy latency {Measure.Ms(Latency)} each way; {Iterations} sequential open / select 1 / close");
        Console.WriteLine($"{db}: pre-ping on every checkout: AcquireP50 {Measure.Ms(pinged.AcquireP50)} P95 {Measure.Ms(pinged.AcquireP95)} max {Measure.Ms(pinged.AcquireMax)}; " +
                          $"UseP50 {Measure.Ms(pinged.UseP50)} P95 {Measure.Ms(pinged.UseP95)}; created {pinged.ConnectionsCreated}; client-side open+query {Measure.Summary(pingedClient)}");
        Console.WriteLine($"{db}: default alive window:     AcquireP50 {Measure.Ms(hot.AcquireP50)} P95 {Measure.Ms(hot.AcquireP95)} max {Measure.Ms(hot.AcquireMax)}; " +
                          $"UseP50 {Measure.Ms(hot.UseP50)} P95 {Measure.Ms(hot.UseP95)}; created {hot.ConnectionsCreated}; client-side open+query {Measure.Summary(hotClient)}");

        Assert.IsTrue(pinged.UseP50 >= Latency, $"UseP50 {Measure.Ms(pinged.UseP50)} must be at least the latency: a query is a round trip");
        Assert.IsTrue(pinged.AcquireP50 >= Latency, $"AcquireP50 {Measure.Ms(pinged.AcquireP50)} must be at least the latency when every checkout pings");
        Assert.IsTrue(hot.UseP50 >= Latency, $"UseP50 {Measure.Ms(hot.UseP50)} (hot)");
        Assert.IsTrue(hot.AcquireP50 < Latency, $"AcquireP50 {Measure.Ms(hot.AcquireP50)}: hot connections skip the pre-ping");
        Assert.AreEqual(Iterations, pinged.Checkouts);
        Assert.AreEqual(Iterations, hot.Checkouts);
    }

    private static async Task<(CovetPoolStatistics Stats, TimeSpan[] Client)> LoopAsync(FaultDb db, string label, TimeSpan aliveWindow)
    {
        await using var rig = FaultRig.Create(db, label, o =>
        {
            o.MaxPoolSize = 4;
            o.AliveBypassWindow = aliveWindow;
            o.AutoScale = false;
        });
        rig.Proxy.Latency = Latency;
        var client = new List<TimeSpan>();
        for (var i = 0; i < Iterations; i++)
        {
            var clock = Stopwatch.StartNew();
            await using (var connection = await rig.OpenAsync())
            {
                await using var command = connection.CreateCommand();
                command.CommandText = "select 1";
                await command.ExecuteScalarAsync();
            }
            client.Add(clock.Elapsed);
            await Task.Delay(10);
        }
        return (rig.Stats, client.ToArray());
    }
}
