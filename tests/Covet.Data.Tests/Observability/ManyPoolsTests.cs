using Covet.Data.Tests.TestSupport;

namespace Covet.Data.Tests.Observability;

[TestClass]
public sealed class ManyPoolsTests
{
    [TestMethod]
    public async Task ExhaustingOnePool_NeverAffectsAnother()
    {
        await using var busy = TestPool.Create(o => { o.MaxPoolSize = 1; o.AcquireTimeout = TimeSpan.FromSeconds(1); o.PoolName = $"busy-{Guid.NewGuid():N}"; });
        await using var calm = TestPool.Create(o => { o.MaxPoolSize = 1; o.PoolName = $"calm-{Guid.NewGuid():N}"; });

        await using var held = await busy.OpenAsync();
        var waiting = busy.OpenAsync();
        await Poll.UntilAsync(() => busy.Stats.Waiting == 1, "a caller waiting on the busy pool");

        await using (var other = await calm.OpenAsync())
            Assert.AreEqual(1, Convert.ToInt32(await other.QueryScalarAsync("SELECT 1")));

        busy.Time.Advance(TimeSpan.FromSeconds(2));
        await Assert.ThrowsExactlyAsync<CovetPoolExhaustedException>(() => waiting);
        Assert.AreEqual(0, calm.Stats.AcquireTimeouts);
    }

    [TestMethod]
    public async Task CovetPools_EnumeratesAndClearsPoolsByName()
    {
        var name = $"named-{Guid.NewGuid():N}";
        await using var pool = TestPool.Create(o => o.PoolName = name);
        await (await pool.OpenAsync()).DisposeAsync();
        Assert.AreEqual(1, pool.Server.OpenConnections);

        CollectionAssert.Contains(CovetPools.Names.ToList(), name);
        Assert.AreEqual(1, CovetPools.GetStatistics(name).Single().Idle);

        Assert.AreEqual(1, CovetPools.Clear(name));
        Assert.AreEqual(0, pool.Server.OpenConnections, "clearing closed the idle physical connection");
        await pool.Source.DisposeAsync();
        CollectionAssert.DoesNotContain(CovetPools.Names.ToList(), name, "a disposed pool leaves the view");
    }
}
