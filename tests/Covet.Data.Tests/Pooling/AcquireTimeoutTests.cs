using System.Globalization;
using Covet.Data.Tests.TestSupport;

namespace Covet.Data.Tests.Pooling;

[TestClass]
public sealed class AcquireTimeoutTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    private static TestPool CreateExhaustible() => TestPool.Create(o =>
    {
        o.MaxPoolSize = 1;
        o.AcquireTimeout = Timeout;
        o.LeakDetectionThreshold = TimeSpan.FromSeconds(60); // on, and capturing every checkout: holders' stack traces are known
        o.LeakStackTraces = CovetLeakStackTraces.Always;
    });

    private static void AssertDescribesExhaustion(CovetPoolExhaustedException e, string holderMethod)
    {
        var message = e.Message;
        Assert.Contains("Total 1", message);
        Assert.Contains("idle 0", message);
        Assert.Contains("in use 1", message);
        Assert.Contains("waiting 0", message);
        Assert.Contains("max 1", message);
        Assert.Contains(Timeout.TotalSeconds.ToString("F1", CultureInfo.CurrentCulture) + " s", message);
        Assert.Contains("MaxPoolSize", message);
        Assert.Contains(holderMethod, message, StringComparison.Ordinal, "the message should show where the holder opened its connection");

        Assert.HasCount(1, e.Holders);
        Assert.IsNotNull(e.Holders[0].StackTrace);
        Assert.Contains(holderMethod, e.Holders[0].StackTrace!);
        Assert.IsGreaterThanOrEqualTo(Timeout, e.Holders[0].Held);
        Assert.IsFalse(string.IsNullOrEmpty(e.PoolName));
        Assert.IsTrue(e.IsTransient);
    }

    [TestMethod]
    public async Task OpenAsync_PoolExhausted_ThrowsAfterAcquireTimeoutWithDiagnostics()
    {
        await using var pool = CreateExhaustible();
        await using var holder = pool.Source.CreateConnection();
        await holder.OpenAsync();
        await using var waiter = pool.Source.CreateConnection();

        var open = waiter.OpenAsync();
        pool.Time.Advance(Timeout - TimeSpan.FromMilliseconds(1));
        Assert.IsFalse(await Poll.CompletesAsync(open, TimeSpan.FromMilliseconds(50)), "gave up before the acquire timeout");
        pool.Time.Advance(TimeSpan.FromMilliseconds(1));

        var e = await Assert.ThrowsExactlyAsync<CovetPoolExhaustedException>(() => open.Bounded());
        AssertDescribesExhaustion(e, nameof(OpenAsync_PoolExhausted_ThrowsAfterAcquireTimeoutWithDiagnostics));
        var stats = pool.Stats;
        Assert.AreEqual(1, stats.AcquireTimeouts);
        Assert.AreEqual(0, stats.Waiting);
        Assert.AreEqual(System.Data.ConnectionState.Closed, waiter.State);
        Assert.HasCount(1, pool.LogsWithId(5001));
    }

    [TestMethod]
    public async Task Open_Sync_PoolExhausted_ThrowsAfterAcquireTimeoutWithDiagnostics()
    {
        await using var pool = CreateExhaustible();
        using var holder = pool.Source.CreateConnection();
        holder.Open();
        using var waiter = pool.Source.CreateConnection();

        var open = Task.Factory.StartNew(waiter.Open, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        await Poll.UntilAsync(() => pool.Stats.Waiting == 1, "the sync caller waiting");
        // The waiter arms its timeout right after queueing; advancing in steps makes the test independent of that instant.
        await Poll.UntilAsync(() =>
        {
            pool.Time.Advance(Timeout);
            return Poll.Completes(open, TimeSpan.FromMilliseconds(20));
        }, "the sync Open to time out");

        var e = await Assert.ThrowsExactlyAsync<CovetPoolExhaustedException>(() => open.Bounded());
        AssertDescribesExhaustion(e, nameof(Open_Sync_PoolExhausted_ThrowsAfterAcquireTimeoutWithDiagnostics));
        Assert.AreEqual(1, pool.Stats.AcquireTimeouts);
        Assert.AreEqual(0, pool.Stats.Waiting);
    }

    [TestMethod]
    public async Task Open_Sync_Waiter_TimesOutOnThePoolsClockNotTheWallClock()
    {
        // The pool's TimeProvider is its clock: a sync waiter must not give up while that clock says time is left.
        await using var pool = TestPool.Create(o => { o.MaxPoolSize = 1; o.AcquireTimeout = TimeSpan.FromMilliseconds(100); });
        using var holder = pool.Open();
        using var waiter = pool.Source.CreateConnection();
        var open = Task.Factory.StartNew(waiter.Open, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        await Poll.UntilAsync(() => pool.Stats.Waiting == 1, "the sync caller waiting");

        var gaveUpEarly = await Poll.CompletesAsync(open, TimeSpan.FromMilliseconds(500));
        pool.Time.Advance(TimeSpan.FromMilliseconds(100));
        await Assert.ThrowsExactlyAsync<CovetPoolExhaustedException>(() => open.Bounded());
        Assert.IsFalse(gaveUpEarly, "the sync waiter timed out on the wall clock although the pool's clock had not moved");
    }

    [TestMethod]
    public async Task OpenAsync_Cancelled_ThrowsOperationCanceledAndLeavesNoWaiter()
    {
        await using var pool = CreateExhaustible();
        var holder = await pool.OpenAsync();
        await using var waiter = pool.Source.CreateConnection();
        using var cts = new CancellationTokenSource();

        var open = waiter.OpenAsync(cts.Token);
        Assert.AreEqual(1, pool.Stats.Waiting);
        await cts.CancelAsync();

        var e = await Assert.ThrowsAsync<OperationCanceledException>(() => open.Bounded());
        Assert.AreEqual(cts.Token, e.CancellationToken);
        Assert.AreEqual(0, pool.Stats.Waiting);
        Assert.AreEqual(0, pool.Stats.AcquireTimeouts);

        // The returned connection must not be handed to the cancelled caller: it goes idle for the next one.
        await holder.CloseAsync();
        Assert.AreEqual(1, pool.Stats.Idle);
        var next = pool.Source.CreateConnection();
        var nextOpen = next.OpenAsync();
        Assert.IsTrue(nextOpen.IsCompletedSuccessfully, "the next caller should get the idle connection at once");
        await next.DisposeAsync();
    }

    [TestMethod]
    public async Task OpenAsync_TimedOutWaiter_IsSkippedWhenTheConnectionComesBack()
    {
        await using var pool = CreateExhaustible();
        var holder = await pool.OpenAsync();
        await using var waiter = pool.Source.CreateConnection();
        var open = waiter.OpenAsync();
        pool.Time.Advance(Timeout);
        await Assert.ThrowsExactlyAsync<CovetPoolExhaustedException>(() => open.Bounded());

        await holder.CloseAsync();
        Assert.AreEqual(1, pool.Stats.Idle);
        Assert.AreEqual(0, pool.Stats.InUse);
    }

    [TestMethod]
    public async Task OpenAsync_LeakDetectionOff_ExhaustionSaysNoStackTraceWasCaptured()
    {
        await using var pool = TestPool.Create(o =>
        {
            o.MaxPoolSize = 1;
            o.AcquireTimeout = Timeout;
            o.LeakDetectionThreshold = TimeSpan.Zero;
        });
        await using var holder = await pool.OpenAsync();
        await using var waiter = pool.Source.CreateConnection();
        var open = waiter.OpenAsync();
        pool.Time.Advance(Timeout);

        var e = await Assert.ThrowsExactlyAsync<CovetPoolExhaustedException>(() => open.Bounded());
        Assert.HasCount(1, e.Holders);
        Assert.IsNull(e.Holders[0].StackTrace);
        Assert.Contains("not captured", e.Message);
        Assert.DoesNotContain(nameof(OpenAsync_LeakDetectionOff_ExhaustionSaysNoStackTraceWasCaptured), e.Message);
    }

    [TestMethod]
    public async Task OpenAsync_BlackHoledServer_OpenIsBoundedByAcquireTimeoutOnThePoolClock()
    {
        await using var pool = TestPool.Create(o => o.AcquireTimeout = TimeSpan.FromSeconds(30));
        pool.Server.BlackHole = true;
        await using var connection = pool.Source.CreateConnection();

        var open = connection.OpenAsync();
        pool.Time.Advance(TimeSpan.FromSeconds(30));

        // The pool's clock says the acquire timeout has passed: the open must give up now, not 30 real seconds later.
        Assert.IsTrue(await Poll.CompletesAsync(open, TimeSpan.FromSeconds(3)),
            "a black-holed open was not cancelled when the acquire timeout passed on the pool's TimeProvider");
        await Assert.ThrowsExactlyAsync<CovetPoolExhaustedException>(() => open.Bounded());
        // The slot comes back once the abandoned driver open has ended (MaxPoolSize is a hard cap on server connections).
        await Poll.UntilAsync(() => pool.Stats.Total == 0, "the slot of the abandoned open given back");
    }
}
