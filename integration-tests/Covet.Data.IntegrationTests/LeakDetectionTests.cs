using System.Runtime.CompilerServices;
using Dapper;

namespace Covet.Data.IntegrationTests;

/// <summary>
/// Leak detection against a real server, in real time (maintenance every 100 ms): the warning names the code that
/// opened the connection, reclaim frees the slot for a waiter, a garbage-collected open connection is recovered, and an
/// exhausted pool's error names the holders.
/// </summary>
[TestClass]
public sealed class LeakDetectionTests
{
    private const int LeakSuspected = 4001, LeakReturned = 4002, LeakReclaimed = 4003, ForgottenConnection = 4004, PoolExhausted = 5001;

    private static CovetPoolOptions LeakOptions(CapturedLogs logs, int maxPoolSize = 1) => new()
    {
        MaxPoolSize = maxPoolSize,
        AcquireTimeout = TimeSpan.FromSeconds(10),
        LeakDetectionThreshold = TimeSpan.FromMilliseconds(200),
        MaintenanceInterval = TimeSpan.FromMilliseconds(100),
        MaxCheckoutDuration = TimeSpan.Zero,
        // Every checkout's stack trace (the default, Adaptive, samples 1 in 256 until it suspects a leak), so the
        // assertions on where a connection was opened do not depend on which checkout was sampled.
        LeakStackTraces = CovetLeakStackTraces.Always,
        AutoScale = false,
        LoggerFactory = logs.Factory,
    };

    private static async Task<string> WaitForEventAsync(CapturedLogs logs, int eventId)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (logs.WithEventId(eventId).Count == 0)
        {
            if (clock.Elapsed > Poll.DefaultTimeout)
                Assert.Fail($"No log event {eventId} within {Poll.DefaultTimeout.TotalSeconds:F0} s; logged:\n{logs.Dump()}");
            await Task.Delay(20);
        }
        return logs.WithEventId(eventId)[0].Message;
    }

    [TestMethod]
    public async Task LeakWarning_NamesTheMethodThatOpenedTheConnection_WhenOpenedSynchronously()
    {
        using var logs = new CapturedLogs();
        using var pool = new PgTestPool("leak-sync", LeakOptions(logs));
        var connection = pool.Open();
        try
        {
            var message = await WaitForEventAsync(logs, LeakSuspected);
            StringAssert.Contains(message, nameof(LeakWarning_NamesTheMethodThatOpenedTheConnection_WhenOpenedSynchronously), message);
            Assert.AreEqual(1, pool.Stats.SuspectedLeaks);
            Assert.AreEqual(1L, pool.Stats.LeaksDetected);
        }
        finally
        {
            connection.Dispose();
        }
        await WaitForEventAsync(logs, LeakReturned);
        Assert.AreEqual(0, pool.Stats.SuspectedLeaks);
    }

    [TestMethod]
    public async Task LeakWarning_NamesTheMethodThatOpenedTheConnection_WhenOpenedAsynchronouslyOnAColdPool()
    {
        // The first OpenAsync of a pool really awaits the provider's OpenAsync, so the checkout completes on another
        // thread: the stack trace must still lead to this method.
        using var logs = new CapturedLogs();
        using var pool = new PgTestPool("leak-async", LeakOptions(logs));
        await using var connection = await pool.OpenAsync();
        var message = await WaitForEventAsync(logs, LeakSuspected);
        StringAssert.Contains(message, nameof(LeakWarning_NamesTheMethodThatOpenedTheConnection_WhenOpenedAsynchronouslyOnAColdPool), message);
    }

    [TestMethod]
    public async Task Reclaim_FreesTheSlotForAWaiter_AndTheLeakedConnectionThenThrowsReclaimed()
    {
        using var logs = new CapturedLogs();
        var options = LeakOptions(logs);
        options.MaxCheckoutDuration = TimeSpan.FromMilliseconds(500);
        using var pool = new PgTestPool("reclaim", options);
        var leaked = pool.Open();
        var leakedPid = leaked.ExecuteScalar<int>("select pg_backend_pid()");

        // Max 1 and the only connection is leaked: this caller waits until the pool reclaims it.
        var waiter = Task.Run(async () =>
        {
            await using var connection = await pool.OpenAsync();
            return await connection.ExecuteScalarAsync<int>("select pg_backend_pid()");
        });
        var waiterPid = await waiter.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.AreNotEqual(leakedPid, waiterPid, "the waiter got a new physical connection; the leaked one was closed");
        var reclaimed = Assert.ThrowsExactly<CovetConnectionReclaimedException>(() => leaked.ExecuteScalar<int>("select 1"));
        StringAssert.Contains(reclaimed.Message, "MaxCheckoutDuration");
        leaked.Dispose(); // closing a reclaimed connection is harmless

        var message = await WaitForEventAsync(logs, LeakReclaimed);
        StringAssert.Contains(message, nameof(Reclaim_FreesTheSlotForAWaiter_AndTheLeakedConnectionThenThrowsReclaimed), message);
        await Poll.UntilAsync(async () => !await Pg.IsAliveAsync(leakedPid), "the reclaimed backend to exit (its physical connection was closed)");
        var stats = await Poll.UntilNothingInUseAsync(pool.DataSource);
        Assert.AreEqual(1L, stats.LeaksReclaimed);
        Assert.AreEqual(1, stats.Total);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void OpenAndForget(CovetDataSource dataSource)
    {
        var connection = dataSource.CreateConnection();
        connection.Open();
        connection.ExecuteScalar<int>("select 1");
        // neither closed nor disposed: the reference dies with this frame
    }

    [TestMethod]
    public async Task ForgottenOpenConnection_IsRecoveredAfterGarbageCollection_AndTheLogNamesWhereItWasOpened()
    {
        using var logs = new CapturedLogs();
        var options = LeakOptions(logs);
        options.LeakDetectionThreshold = TimeSpan.FromSeconds(60); // stack traces captured; no leak warning during the test
        options.AcquireTimeout = TimeSpan.FromSeconds(2);
        using var pool = new PgTestPool("forgotten", options);

        OpenAndForget(pool.DataSource);
        Assert.AreEqual(1, pool.Stats.InUse);
        await Poll.UntilAsync(() =>
        {
            GC.Collect();
            return pool.Stats.ForgottenConnections == 1;
        }, "the forgotten connection to be collected and recovered by the next maintenance tick");

        var message = await WaitForEventAsync(logs, ForgottenConnection);
        StringAssert.Contains(message, nameof(OpenAndForget), message);
        await Poll.UntilAsync(() => pool.Stats.Total == 0, "the recovered physical connection to be closed");
        await Pg.WaitForCountAsync(pool.ApplicationName, 0, "after recovery");

        // The one slot is free again.
        await using var connection = await pool.OpenAsync();
        Assert.AreEqual(1, await connection.ExecuteScalarAsync<int>("select 1"));
    }

    [TestMethod]
    public async Task AcquireTimeoutOnAnExhaustedPool_ThrowsPoolExhausted_NamingTheHoldersWithTheirStackTraces()
    {
        using var logs = new CapturedLogs();
        var options = LeakOptions(logs);
        options.LeakDetectionThreshold = TimeSpan.FromSeconds(60);
        options.AcquireTimeout = TimeSpan.FromMilliseconds(500);
        using var pool = new PgTestPool("exhausted", options);
        using var holder = pool.Open();

        await using var second = pool.DataSource.CreateConnection();
        var exhausted = await Assert.ThrowsExactlyAsync<CovetPoolExhaustedException>(() => second.OpenAsync());

        var name = nameof(AcquireTimeoutOnAnExhaustedPool_ThrowsPoolExhausted_NamingTheHoldersWithTheirStackTraces);
        StringAssert.Contains(exhausted.Message, name, exhausted.Message);
        Assert.HasCount(1, exhausted.Holders);
        StringAssert.Contains(exhausted.Holders[0].StackTrace!, name);
        Assert.IsGreaterThan(0, exhausted.Holders[0].ThreadId);
        Assert.IsTrue(exhausted.IsTransient);
        Assert.AreEqual(1L, pool.Stats.AcquireTimeouts);
        StringAssert.Contains(await WaitForEventAsync(logs, PoolExhausted), name);
    }
}
