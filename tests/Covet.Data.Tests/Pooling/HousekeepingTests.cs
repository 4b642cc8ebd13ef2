using Covet.Data.Pooling;
using Covet.Data.Tests.TestSupport;

namespace Covet.Data.Tests.Pooling;

/// <summary>
/// The process-wide housekeeping scheduler: a quiet pool is parked until its next deadline instead of being visited every
/// maintenance interval, and any checkout wakes it, so nothing it should watch is left unwatched.
/// </summary>
[TestClass]
public sealed class HousekeepingTests
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    private static TestPool Create(Action<CovetPoolOptions>? configure = null) => TestPool.Create(o =>
    {
        o.MaintenanceInterval = Interval;
        o.LeakDetectionThreshold = TimeSpan.FromSeconds(5);
        o.LeakStackTraces = CovetLeakStackTraces.Always;
        o.IdleTimeout = TimeSpan.FromMinutes(10);
        o.HealthCheckInterval = TimeSpan.Zero;
        configure?.Invoke(o);
    });

    [TestMethod]
    public async Task QuietPool_IsParkedUntilItsNextDeadline()
    {
        await using var pool = Create();
        await (await pool.OpenAsync()).DisposeAsync();
        pool.Time.Advance(Interval);

        var housekeeping = pool.Source.Pool.Housekeeping;
        Assert.IsTrue(pool.Source.Pool.Parked, "every slot idle, no one waiting: nothing to do every interval");
        var due = pool.Source.Pool.Clock.Elapsed(pool.Source.Pool.Clock.Now(), housekeeping.ScheduledDue);
        Assert.IsGreaterThan(TimeSpan.FromMinutes(9), due, $"parked until the idle connection's idle timeout, not the next interval (due in {due})");
        Assert.IsLessThanOrEqualTo(TimeSpan.FromMinutes(10), due);
    }

    [TestMethod]
    public async Task ParkedPool_StillEvictsAtTheIdleTimeout()
    {
        await using var pool = Create();
        await (await pool.OpenAsync()).DisposeAsync();
        pool.Time.Advance(Interval);
        Assert.IsTrue(pool.Source.Pool.Parked);

        pool.Time.Advance(TimeSpan.FromMinutes(10));

        Assert.AreEqual(0, pool.Stats.Total, "the parked pool was visited at its deadline and the idle connection closed");
        Assert.AreEqual(0, pool.Server.OpenConnections);
    }

    [TestMethod]
    public async Task CheckoutOfAParkedPool_WakesIt_SoALeakIsStillReported()
    {
        await using var pool = Create();
        await (await pool.OpenAsync()).DisposeAsync();
        pool.Time.Advance(Interval);
        Assert.IsTrue(pool.Source.Pool.Parked);

        var leaked = pool.Source.CreateConnection();
        leaked.Open(); // the fast path: a hot idle connection
        Assert.IsFalse(pool.Source.Pool.Parked, "the checkout woke the pool");

        pool.Time.Advance(TimeSpan.FromSeconds(6));
        Assert.HasCount(1, pool.LogsWithId(4001), "the leak watch ran within an interval of the threshold");
        leaked.Dispose();
    }

    [TestMethod]
    public async Task PoolBelowItsMinimum_IsNotParked_AndWarmsUp()
    {
        await using var pool = Create(o => o.MinPoolSize = 2);
        await pool.UntilQuiescentAsync();
        Assert.AreEqual(2, pool.Stats.Idle);
        pool.Server.KillAll();
        pool.Time.Advance(Interval);
        pool.Time.Advance(Interval);
        await Poll.UntilAsync(() => pool.Stats.Idle == 2 && pool.Server.OpenConnections == 2, "dead connections replaced, minimum refilled");
    }

    [TestMethod]
    public void Scheduler_IsOnePerClock()
    {
        var clock = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        Assert.AreSame(HousekeepingScheduler.For(clock), HousekeepingScheduler.For(clock));
        Assert.AreNotSame(HousekeepingScheduler.For(clock), HousekeepingScheduler.For(TimeProvider.System));
    }

    [TestMethod]
    public void PoolClock_OnTheSystemClockIsCoarseMilliseconds_OnAFakeClockTheFakesTimestamp()
    {
        var system = new PoolClock(TimeProvider.System);
        Assert.IsTrue(system.IsCoarse);
        Assert.AreEqual(1000, system.Frequency);
        Assert.AreEqual(500, system.Units(TimeSpan.FromMilliseconds(500)));
        Assert.AreEqual(TimeSpan.FromMilliseconds(250), system.Elapsed(1000, 1250));
        Assert.IsTrue(Math.Abs(system.Now() - Environment.TickCount64) < 1000, "the tick count itself");

        var fake = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        var clock = new PoolClock(fake);
        Assert.IsFalse(clock.IsCoarse);
        var start = clock.Now();
        fake.Advance(TimeSpan.FromMilliseconds(3));
        Assert.AreEqual(TimeSpan.FromMilliseconds(3), clock.Elapsed(start, clock.Now()));
        Assert.AreEqual(long.MaxValue, clock.Units(Timeout.InfiniteTimeSpan));
    }
}
