using Covet.Data.Tests.TestSupport;

namespace Covet.Data.Tests.Pooling;

/// <summary>Demand-driven sizing (on by default): grows the warm set under load, lets idle connections go when quiet.</summary>
[TestClass]
public sealed class AutoScaleTests
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(5);

    private static TestPool Create(int min, int max) => TestPool.Create(o =>
    {
        o.AutoScale = true;
        o.MinPoolSize = min;
        o.MaxPoolSize = max;
        o.ScaleInterval = Interval;
        o.IdleTimeout = TimeSpan.Zero;           // only the sizer lets connections go
        o.HealthCheckInterval = TimeSpan.Zero;
    });

    [TestMethod]
    public async Task HighUtilization_GrowsTheWarmSetInTheBackground()
    {
        await using var pool = Create(min: 0, max: 10);
        await using var held = await pool.OpenAsync();

        pool.Time.Advance(TimeSpan.FromSeconds(1));
        await Poll.UntilAsync(() => pool.Stats is { Total: 2, Idle: 1 }, "one spare warm connection");
        Assert.AreEqual(2, pool.Server.OpenConnections);
        Assert.AreEqual(2, pool.Stats.WarmTarget);
        Assert.AreEqual(1, pool.Stats.Checkouts, "grown without any caller opening");
    }

    [TestMethod]
    public async Task HighUtilization_NeverGrowsBeyondMaxPoolSize()
    {
        await using var pool = Create(min: 0, max: 3);
        var held = new List<CovetDbConnection>();
        for (var i = 0; i < 3; i++)
            held.Add(await pool.OpenAsync());

        for (var i = 0; i < 10; i++)
            pool.Time.Advance(Interval);

        Assert.AreEqual(3, pool.Stats.Total);
        Assert.IsLessThanOrEqualTo(3, pool.Server.PeakOpenConnections);
        foreach (var c in held)
            await c.DisposeAsync();
    }

    [TestMethod]
    public async Task LowUtilization_ShrinksStepByStepButNeverBelowMinPoolSize()
    {
        await using var pool = Create(min: 2, max: 10);
        await Poll.UntilAsync(() => pool.Stats.Idle == 2, "the minimum warmed up");
        var connections = new List<CovetDbConnection>();
        for (var i = 0; i < 8; i++)
            connections.Add(await pool.OpenAsync());
        foreach (var c in connections)
            await c.DisposeAsync();
        Assert.AreEqual(8, pool.Stats.Idle);

        var sizes = new List<int>();
        for (var i = 0; i < 20; i++)
        {
            pool.Time.Advance(Interval);
            sizes.Add(pool.Stats.Total);
        }

        Assert.AreEqual(2, pool.Stats.Total);
        Assert.AreEqual(2, pool.Server.OpenConnections);
        Assert.IsTrue(sizes.Zip(sizes.Skip(1)).All(p => p.Second <= p.First), $"sizes went up while idle: {string.Join(",", sizes)}");
        Assert.IsTrue(sizes.Zip(sizes.Skip(1)).All(p => p.First - p.Second < 8 - 2), "shrunk in one jump instead of steps");
        Assert.AreEqual(2, pool.Stats.WarmTarget);
    }

    [TestMethod]
    public async Task AutoScaleOff_KeepsIdleConnections()
    {
        await using var pool = TestPool.Create(o => { o.AutoScale = false; o.IdleTimeout = TimeSpan.Zero; o.HealthCheckInterval = TimeSpan.Zero; });
        var connections = new List<CovetDbConnection>();
        for (var i = 0; i < 4; i++)
            connections.Add(await pool.OpenAsync());
        foreach (var c in connections)
            await c.DisposeAsync();
        for (var i = 0; i < 20; i++)
            pool.Time.Advance(Interval);
        Assert.AreEqual(4, pool.Stats.Idle);
    }
}
