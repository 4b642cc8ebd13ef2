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

    [TestMethod]
    public async Task PoolId_IsUniqueAndStable_EvenWhenPoolsShareAName()
    {
        var name = $"shared-{Guid.NewGuid():N}";
        await using var a = TestPool.Create(o => o.PoolName = name);
        await using var b = TestPool.Create(o => o.PoolName = name);

        var idOfA = a.Stats.PoolId;
        var ids = CovetPools.GetStatistics(name).Select(s => s.PoolId).ToList();

        Assert.AreEqual(2, ids.Distinct().Count());
        Assert.IsTrue(ids.All(id => id > 0));
        CollectionAssert.AreEquivalent(new[] { a.Stats.PoolId, b.Stats.PoolId }, ids);
        Assert.AreEqual(idOfA, a.Stats.PoolId, "stable across calls");
        Assert.AreEqual(a.Stats.PoolId, CovetPools.GetStatistics().Single(s => s.PoolId == a.Stats.PoolId).PoolId);
    }

    [TestMethod]
    public async Task GetHolders_ListsTheLongestCheckoutsOfEveryPoolOfThatName_LongestFirst_WithTheOpenersStackTrace()
    {
        var name = $"holders-{Guid.NewGuid():N}";
        await using var a = TestPool.Create(o => { o.PoolName = name; o.LeakStackTraces = CovetLeakStackTraces.Always; });
        await using var b = TestPool.Create(o => { o.PoolName = name; o.LeakStackTraces = CovetLeakStackTraces.Always; });
        await using var older = a.Open();
        a.Time.Advance(TimeSpan.FromSeconds(5));
        await using var newer = b.Open();
        b.Time.Advance(TimeSpan.FromSeconds(1));

        var holders = CovetPools.GetHolders(name);

        Assert.AreEqual(2, holders.Count);
        Assert.AreEqual(TimeSpan.FromSeconds(5), holders[0].Held);
        Assert.AreEqual(TimeSpan.FromSeconds(1), holders[1].Held);
        StringAssert.Contains(holders[0].StackTrace, nameof(GetHolders_ListsTheLongestCheckoutsOfEveryPoolOfThatName_LongestFirst_WithTheOpenersStackTrace));
        Assert.AreEqual(Environment.CurrentManagedThreadId, holders[0].ThreadId);
        Assert.AreEqual(TimeSpan.FromSeconds(5), CovetPools.GetHolders(name, max: 1).Single().Held);
        Assert.AreEqual(0, CovetPools.GetHolders($"no-such-pool-{Guid.NewGuid():N}").Count);
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => CovetPools.GetHolders(name, -1));
    }
}
