using System.Diagnostics;
using Npgsql;

namespace Covet.Data.IntegrationTests.FaultInjection;

/// <summary>
/// Scenario d: 50 callers arrive at once on a pool warmed to 5 while every new connection takes ~100 ms to connect.
/// Compares Covet with Npgsql's own pool (same proxy, same settings) on physical connections opened and time to serve
/// the spike; Covet must never exceed MaxPoolSize nor open more connections than there are callers.
/// </summary>
[TestClass]
public sealed class ConnectSpikeTests
{
    private const int Callers = 50;
    private const int MinPoolSize = 5;
    private const int MaxPoolSize = 50;
    private static readonly TimeSpan ConnectLatency = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan Work = TimeSpan.FromMilliseconds(20);

    private sealed record SpikeResult(TimeSpan Total, TimeSpan[] Acquires, int Failed, long Opened, int MaxActive);

    [TestMethod]
    public async Task SpikeOf50Callers_SlowConnect_CovetStaysWithinMaxAndOpensNoMoreThanCallers_Postgres()
    {
        await WarmUpCodePathsAsync();

        // ---- Covet
        await using var rig = FaultRig.Create(FaultDb.Postgres, "spike", o =>
        {
            o.MinPoolSize = MinPoolSize;
            o.MaxPoolSize = MaxPoolSize;
            o.AcquireTimeout = TimeSpan.FromSeconds(10);
        }, network: p => p.ConnectLatency = ConnectLatency);
        // Warmed: at least the minimum idle, nothing being opened. (Demand sizing may add one during warm-up, see
        // WarmUp_WithSlowConnects_DoesNotScaleUpWithoutDemand.)
        Assert.IsTrue(await Measure.UntilAsync(() => rig.Stats is { Idle: >= MinPoolSize } s && s.Total == s.Idle, TimeSpan.FromSeconds(5)),
            $"warm-up to the minimum: {Measure.Describe(rig.Stats)}");
        var warmed = rig.Stats.Idle;
        var createdBefore = rig.Stats.ConnectionsCreated;

        var maxTotal = 0;
        var covet = await SpikeAsync(rig.Proxy, () => rig.DataSource.CreateConnection(), () => maxTotal = Math.Max(maxTotal, rig.Stats.Total));
        var covetCreated = rig.Stats.ConnectionsCreated - createdBefore;
        await Task.Delay(300); // anything opened in the background right after the spike counts too
        var covetCreatedLater = rig.Stats.ConnectionsCreated - createdBefore;
        var covetStats = rig.Stats;
        var covetAccepted = rig.Proxy.Accepted;
        await rig.DataSource.DisposeAsync(); // its connections leave the proxy, so the proxy counts only Npgsql's below
        Assert.IsTrue(await Measure.UntilAsync(() => rig.Proxy.Active == 0, TimeSpan.FromSeconds(5)), rig.Proxy.ToString());

        // ---- Npgsql's own pool through the same proxy, warmed to the same minimum.
        var npgsqlConnectionString = new NpgsqlConnectionStringBuilder(FaultDb.Postgres.ConnectionStringVia(rig.Proxy.Port, "spike-npgsql"))
        {
            Pooling = true,
            MinPoolSize = MinPoolSize,
            MaxPoolSize = MaxPoolSize,
            Timeout = 10,
        }.ConnectionString;
        await using var npgsql = NpgsqlDataSource.Create(npgsqlConnectionString);
        var warm = await Task.WhenAll(Enumerable.Range(0, MinPoolSize).Select(_ => npgsql.OpenConnectionAsync().AsTask()));
        foreach (var connection in warm)
            await connection.DisposeAsync();
        var npgsqlResult = await SpikeAsync(rig.Proxy, () => npgsql.CreateConnection(), () => { });

        Console.WriteLine($"spike: {Callers} callers at once, min {MinPoolSize} (Covet had {warmed} warm, Npgsql {MinPoolSize}), max {MaxPoolSize}, connect latency {Measure.Ms(ConnectLatency)}, {Measure.Ms(Work)} of work each");
        Console.WriteLine($"Covet : served in {Measure.Ms(covet.Total)}; acquire {Measure.Summary(covet.Acquires)}; {covet.Failed} failed; " +
                          $"physical connections opened {covet.Opened} (stats: {covetCreated}, {covetCreatedLater} after +300 ms); " +
                          $"max Total {maxTotal}, max through proxy {covet.MaxActive}");
        Console.WriteLine($"Npgsql: served in {Measure.Ms(npgsqlResult.Total)}; acquire {Measure.Summary(npgsqlResult.Acquires)}; {npgsqlResult.Failed} failed; " +
                          $"physical connections opened {npgsqlResult.Opened}, max through proxy {npgsqlResult.MaxActive}");
        Console.WriteLine($"Covet end: {Measure.Describe(covetStats)}");

        Assert.AreEqual(0, covet.Failed, "every caller is served");
        Assert.IsTrue(maxTotal <= MaxPoolSize, $"Covet's Total reached {maxTotal} > MaxPoolSize {MaxPoolSize}");
        Assert.IsTrue(covet.MaxActive <= MaxPoolSize, $"{covet.MaxActive} Covet connections through the proxy at once > MaxPoolSize {MaxPoolSize}");
        Assert.IsTrue(covetCreatedLater <= Callers, $"Covet opened {covetCreatedLater} physical connections for {Callers} callers");
        Assert.AreEqual(covetStats.ConnectionsCreated, covetAccepted, "the pool's count of created connections matches what the proxy saw");
        Assert.IsTrue(covetStats.Total <= MaxPoolSize);
    }

    /// <summary>
    /// With no caller at all, a pool warming up to its minimum over slow connects must stay at the minimum: connections
    /// being opened by the warm-up are not demand.
    /// </summary>
    [TestMethod]
    public async Task WarmUp_WithSlowConnects_DoesNotScaleUpWithoutDemand_Postgres()
    {
        await using var rig = FaultRig.Create(FaultDb.Postgres, "warm-nodemand", o =>
        {
            o.MinPoolSize = MinPoolSize;
            o.MaxPoolSize = MaxPoolSize;
            o.MaintenanceInterval = TimeSpan.FromMilliseconds(100);
        }, network: p => p.ConnectLatency = TimeSpan.FromMilliseconds(400)); // the warm-up spans several maintenance ticks
        await Task.Delay(1200);
        var stats = rig.Stats;
        Console.WriteLine($"no callers, min {MinPoolSize}, connect latency 400 ms, maintenance every 100 ms: after 1.2 s {Measure.Describe(stats)}; warm target {stats.WarmTarget}; {rig.Proxy}");

        Assert.AreEqual(0, stats.Checkouts, "nobody borrowed anything");
        Assert.AreEqual(MinPoolSize, stats.Total,
            $"the pool grew to {stats.Total} (warm target {stats.WarmTarget}) with no demand: its own warm-up connections, still opening, were counted as in use");
        Assert.AreEqual(MinPoolSize, rig.Proxy.Accepted);
    }

    /// <summary>
    /// The same burst through both pools' code paths first, through another proxy without latency, so that neither
    /// measured spike pays for JIT or for the thread pool growing to the burst (whichever ran first looked ~100-250 ms
    /// slower without this).
    /// </summary>
    private static async Task WarmUpCodePathsAsync()
    {
        await using var rig = FaultRig.Create(FaultDb.Postgres, "spike-warm", o => o.MaxPoolSize = Callers);
        await Task.WhenAll(Enumerable.Range(0, Callers).Select(async _ =>
        {
            await using var connection = await rig.OpenAsync();
            await using var command = connection.CreateCommand();
            command.CommandText = "select pg_sleep(0.01)";
            await command.ExecuteScalarAsync();
        }));
        await using var npgsql = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(FaultDb.Postgres.ConnectionStringVia(rig.Proxy.Port, "spike-warm-npgsql"))
        {
            MaxPoolSize = Callers,
        }.ConnectionString);
        await Task.WhenAll(Enumerable.Range(0, Callers).Select(async _ =>
        {
            await using var connection = await npgsql.OpenConnectionAsync();
            await using var command = new NpgsqlCommand("select pg_sleep(0.01)", connection);
            await command.ExecuteScalarAsync();
        }));
    }

    /// <summary>Releases <see cref="Callers"/> callers at once; each opens, works <see cref="Work"/>, closes.</summary>
    private static async Task<SpikeResult> SpikeAsync(LoopbackFaultProxy proxy, Func<System.Data.Common.DbConnection> create, Action sample)
    {
        var acceptedBefore = proxy.Accepted;
        var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var clock = new Stopwatch();
        var callers = Enumerable.Range(0, Callers).Select(_ => Task.Run(async () =>
        {
            await go.Task;
            var start = clock.Elapsed;
            await using var connection = create();
            await connection.OpenAsync();
            var acquired = clock.Elapsed - start;
            await using var command = connection.CreateCommand();
            command.CommandText = $"select pg_sleep({Work.TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture)})";
            await command.ExecuteScalarAsync();
            return acquired;
        })).ToArray();

        var maxActive = 0;
        using var stopSampling = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!stopSampling.IsCancellationRequested)
            {
                maxActive = Math.Max(maxActive, proxy.Active);
                sample();
                await Task.Delay(1);
            }
        });

        await Task.Delay(50); // every caller parked on the gate
        clock.Start();
        go.SetResult();
        var results = await Task.WhenAll(callers.Select(c => Measure.TimeAsync(() => c, TimeSpan.FromSeconds(15))));
        var total = clock.Elapsed;
        await stopSampling.CancelAsync();
        await sampler;
        return new SpikeResult(total, results.Where(r => r.Error is null).Select(r => r.Result).ToArray(),
            results.Count(r => r.Error is not null), proxy.Accepted - acceptedBefore, maxActive);
    }
}
