using System.Data;
using Covet.Data.Tests.TestSupport;

namespace Covet.Data.Tests.Pooling;

/// <summary>
/// A plain async <c>OpenAsync</c> on an exhausted pool returns a waiter's task that the pool completes once the connection
/// is open (checked out by the returner, or after a reset or open on a thread-pool thread); callers with a StateChange
/// handler, an ambient transaction or tracing wait inside the acquire instead. Both must behave the same to the caller.
/// </summary>
[TestClass]
public sealed class WaiterTests
{
    private static TestPool CreateOfOne() => TestPool.Create(o =>
    {
        o.MaxPoolSize = 1;
        o.AcquireTimeout = TimeSpan.FromSeconds(30);
    });

    [TestMethod]
    public async Task OpenAsync_Waiting_IsOpenAndUsableWhenItsTaskCompletes_AndItsWaitIsMeasured()
    {
        await using var pool = CreateOfOne();
        var holder = await pool.OpenAsync();
        await using var waiter = pool.Source.CreateConnection();
        var open = waiter.OpenAsync();
        Assert.IsFalse(open.IsCompleted);
        Assert.AreEqual(ConnectionState.Closed, waiter.State);

        pool.Time.Advance(TimeSpan.FromSeconds(2));
        await holder.CloseAsync();
        await open.Bounded();

        Assert.AreEqual(ConnectionState.Open, waiter.State);
        Assert.AreEqual(1, await waiter.QueryScalarAsync("SELECT 1"));
        var stats = pool.Stats;
        Assert.AreEqual(0, stats.Waiting);
        Assert.AreEqual(1, stats.InUse);
        Assert.IsGreaterThanOrEqualTo(TimeSpan.FromSeconds(1.9), stats.AcquireMax, "the wait is measured from the caller's OpenAsync");
        Assert.HasCount(1, pool.OpenedPhysicals, "the waiter got the returned connection, not a new one");
    }

    [TestMethod]
    public async Task OpenAsync_WithAStateChangeHandler_WaitsTooAndRaisesTheEventOnce()
    {
        await using var pool = CreateOfOne();
        var holder = await pool.OpenAsync();
        await using var waiter = pool.Source.CreateConnection();
        var changes = new List<(ConnectionState From, ConnectionState To)>();
        waiter.StateChange += (_, e) => changes.Add((e.OriginalState, e.CurrentState));

        var open = waiter.OpenAsync();
        Assert.AreEqual(1, pool.Stats.Waiting);
        Assert.IsEmpty(changes);
        await holder.CloseAsync();
        await open.Bounded();
        await waiter.CloseAsync();

        CollectionAssert.AreEqual(new[] { (ConnectionState.Closed, ConnectionState.Open), (ConnectionState.Open, ConnectionState.Closed) }, changes);
    }

    [TestMethod]
    public async Task OpenAsync_ManyWaiters_EachGetsTheConnectionOnceInArrivalOrder_AndNoneIsLeftWaiting()
    {
        await using var pool = CreateOfOne();
        var holder = await pool.OpenAsync();
        var waiters = Enumerable.Range(0, 50).Select(_ => pool.Source.CreateConnection()).ToArray();
        var opens = waiters.Select(w => w.OpenAsync()).ToArray();
        Assert.AreEqual(50, pool.Stats.Waiting);

        await holder.CloseAsync();
        for (var i = 0; i < waiters.Length; i++)
        {
            await opens[i].Bounded();
            Assert.AreEqual(ConnectionState.Open, waiters[i].State, $"waiter {i}");
            Assert.IsTrue(opens.Skip(i + 1).All(o => !o.IsCompleted), $"only waiter {i} may hold the only connection");
            Assert.AreEqual(1, await waiters[i].QueryScalarAsync("SELECT 1"));
            await waiters[i].DisposeAsync();
        }
        var stats = pool.Stats;
        Assert.AreEqual(0, stats.Waiting);
        Assert.AreEqual(stats.Total, stats.Idle + stats.InUse);
        Assert.HasCount(1, pool.OpenedPhysicals);
    }

    [TestMethod]
    public async Task OpenAsync_WaitingWhenThePoolIsDisposed_FailsWithObjectDisposed_AndTheConnectionStaysClosed()
    {
        var pool = CreateOfOne();
        await using var holder = await pool.OpenAsync();
        await using var waiter = pool.Source.CreateConnection();
        var open = waiter.OpenAsync();

        await pool.DisposeAsync();

        var e = await Assert.ThrowsExactlyAsync<ObjectDisposedException>(() => open.Bounded());
        Assert.Contains("disposed while waiting", e.Message);
        Assert.AreEqual(ConnectionState.Closed, waiter.State);
    }
}
