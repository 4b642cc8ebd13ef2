using System.Runtime.CompilerServices;
using Covet.Data.Pooling;
using Covet.Data.Tests.Fakes;
using Covet.Data.Tests.TestSupport;

namespace Covet.Data.Tests.Health;

[TestClass]
public sealed class LeakDetectionTests
{
    private static TestPool Create(TimeSpan threshold, TimeSpan? maxCheckout = null, int max = 10,
        CovetLeakStackTraces traces = CovetLeakStackTraces.Always) => TestPool.Create(o =>
    {
        o.MaxPoolSize = max;
        o.LeakDetectionThreshold = threshold;
        o.MaxCheckoutDuration = maxCheckout ?? TimeSpan.Zero;
        o.LeakStackTraces = traces;
    });

    /// <summary>The "   at ..." lines of a logged stack trace.</summary>
    private static List<string> Frames(string message) =>
        message.Split('\n').Select(l => l.Trim()).Where(l => l.StartsWith("at ", StringComparison.Ordinal)).ToList();

    /// <summary>Full names of every type of the Covet.Data assembly (frames of other assemblies, even named Covet.Data.*, are user code).</summary>
    private static readonly string[] CovetTypes = typeof(CovetDbConnection).Assembly.GetTypes()
        .Select(t => t.FullName!).Where(n => n is not null && !n.Contains('<', StringComparison.Ordinal)).ToArray();

    private static void AssertOnlyUserFrames(List<string> frames, string userMethod)
    {
        Assert.IsNotEmpty(frames, "no stack trace");
        Assert.Contains(userMethod, frames[0], StringComparison.Ordinal, "the first frame should be the code that opened the connection");
        foreach (var frame in frames)
        {
            Assert.DoesNotContain("Covet.Data.Pooling", frame);
            var covet = CovetTypes.FirstOrDefault(t => frame.StartsWith($"at {t}.", StringComparison.Ordinal));
            Assert.IsNull(covet, $"a frame of Covet's own {covet} was not trimmed: {frame}");
        }
    }

    [TestMethod]
    public void HeldPastLeakThreshold_LogsWarningWithTheOpenersStackTrace()
    {
        using var pool = Create(TimeSpan.FromSeconds(1));
        var connection = pool.Source.CreateConnection();
        connection.Open();

        pool.Time.Advance(TimeSpan.FromSeconds(2));

        var leak = pool.LogsWithId(4001);
        Assert.HasCount(1, leak, "reported once, not on every maintenance tick");
        Assert.AreEqual(Microsoft.Extensions.Logging.LogLevel.Warning, leak[0].Level);
        AssertOnlyUserFrames(Frames(leak[0].Message), $"{nameof(LeakDetectionTests)}.{nameof(HeldPastLeakThreshold_LogsWarningWithTheOpenersStackTrace)}");
        Assert.Contains(Environment.CurrentManagedThreadId.ToString(System.Globalization.CultureInfo.InvariantCulture), leak[0].Message);
        var stats = pool.Stats;
        Assert.AreEqual(1, stats.SuspectedLeaks);
        Assert.AreEqual(1, stats.LeaksDetected);

        pool.Time.Advance(TimeSpan.FromSeconds(5));
        Assert.HasCount(1, pool.LogsWithId(4001), "still reported only once");

        connection.Close();
        Assert.HasCount(1, pool.LogsWithId(4002));
        Assert.AreEqual(0, pool.Stats.SuspectedLeaks);
        Assert.AreEqual(1, pool.Stats.LeaksDetected);
        Assert.AreEqual(1, pool.Stats.Idle, "a late but returned connection is pooled normally");
    }

    [TestMethod]
    public async Task HeldPastLeakThreshold_Async_StackTracePointsAtTheAsyncCaller()
    {
        await using var pool = Create(TimeSpan.FromSeconds(1));
        await using var connection = pool.Source.CreateConnection();
        await connection.OpenAsync();

        pool.Time.Advance(TimeSpan.FromSeconds(2));

        var leak = pool.LogsWithId(4001);
        Assert.HasCount(1, leak);
        AssertOnlyUserFrames(Frames(leak[0].Message), nameof(HeldPastLeakThreshold_Async_StackTracePointsAtTheAsyncCaller));
    }

    [TestMethod]
    public async Task ReturnedBeforeThreshold_IsNeverReported()
    {
        await using var pool = Create(TimeSpan.FromSeconds(1));
        await using (await pool.OpenAsync())
            pool.Time.Advance(TimeSpan.FromMilliseconds(900));
        pool.Time.Advance(TimeSpan.FromSeconds(5));

        Assert.IsEmpty(pool.LogsWithId(4001));
        Assert.IsEmpty(pool.LogsWithId(4002));
        Assert.AreEqual(0, pool.Stats.LeaksDetected);
    }

    [TestMethod]
    public async Task LeakThresholdZero_CapturesNoStackTraceAndReportsNothing()
    {
        await using var pool = Create(TimeSpan.Zero, max: 1);
        await using var holder = await pool.OpenAsync();
        pool.Time.Advance(TimeSpan.FromHours(1));

        Assert.IsEmpty(pool.LogsWithId(4001));
        Assert.AreEqual(0, pool.Stats.SuspectedLeaks);
        var holders = pool.Source.Pool.Holders(5);
        Assert.HasCount(1, holders);
        Assert.IsNull(holders[0].StackTrace);
    }

    [TestMethod]
    public async Task HeldPastMaxCheckoutDuration_IsReclaimedAndTheSlotFreed()
    {
        await using var pool = Create(TimeSpan.FromSeconds(1), maxCheckout: TimeSpan.FromSeconds(5), max: 1);
        var leaked = pool.Source.CreateConnection();
        await leaked.OpenAsync();
        var leakedPhysical = (FakeDbConnection)leaked.UnderlyingConnection;
        await using var waiter = pool.Source.CreateConnection();
        var open = waiter.OpenAsync();

        pool.Time.Advance(TimeSpan.FromSeconds(4));
        Assert.IsFalse(open.IsCompleted, "reclaimed before MaxCheckoutDuration");
        pool.Time.Advance(TimeSpan.FromSeconds(1));

        Assert.IsTrue(await Poll.CompletesAsync(open), "the waiting caller did not get the reclaimed slot");
        await open.Bounded();
        Assert.IsTrue(leakedPhysical.IsDisposed, "the leaked physical connection should be closed");
        Assert.AreEqual(1, pool.Stats.LeaksReclaimed);
        Assert.AreEqual(1, pool.Stats.LeaksDetected, "one leak, reported once");
        Assert.HasCount(1, pool.LogsWithId(4003));
        AssertOnlyUserFrames(Frames(pool.LogsWithId(4003)[0].Message), nameof(HeldPastMaxCheckoutDuration_IsReclaimedAndTheSlotFreed));

        // The leaked logical connection is dead to its owner...
        var e = Assert.ThrowsExactly<CovetConnectionReclaimedException>(() => leaked.QueryScalar("SELECT 1"));
        Assert.Contains("MaxCheckoutDuration", e.Message);
        await Assert.ThrowsExactlyAsync<CovetConnectionReclaimedException>(() => leaked.QueryScalarAsync("SELECT 1"));
        Assert.ThrowsExactly<CovetConnectionReclaimedException>(() => leaked.BeginTransaction());
        Assert.ThrowsExactly<CovetConnectionReclaimedException>(() => _ = leaked.ServerVersion);

        // ...but closing it is harmless, and does not disturb the connection now lent to someone else.
        leaked.Close();
        leaked.Dispose();
        await leaked.DisposeAsync();
        Assert.AreEqual(1, pool.Stats.InUse);
        Assert.AreEqual(1, await waiter.QueryScalarAsync("SELECT 1"));
        await waiter.CloseAsync();
        Assert.AreEqual(1, pool.Stats.Idle);
        Assert.AreEqual(1, pool.Stats.Total);
    }

    [TestMethod]
    public async Task Reclaim_WithLeakDetectionOff_StillReclaims()
    {
        await using var pool = Create(TimeSpan.Zero, maxCheckout: TimeSpan.FromSeconds(5));
        var leaked = await pool.OpenAsync();
        pool.Time.Advance(TimeSpan.FromSeconds(5));

        Assert.AreEqual(1, pool.Stats.LeaksReclaimed);
        Assert.AreEqual(0, pool.Stats.Total);
        Assert.ThrowsExactly<CovetConnectionReclaimedException>(() => leaked.QueryScalar("SELECT 1"));
        leaked.Dispose();
    }

    [TestMethod]
    public async Task MaxCheckoutDurationZero_NeverReclaims()
    {
        await using var pool = Create(TimeSpan.FromSeconds(1), maxCheckout: TimeSpan.Zero);
        await using var held = await pool.OpenAsync();
        pool.Time.Advance(TimeSpan.FromHours(2));

        Assert.AreEqual(0, pool.Stats.LeaksReclaimed);
        Assert.AreEqual(1, await held.QueryScalarAsync("SELECT 1"));
    }

    [TestMethod]
    public async Task ForgottenOpenConnection_IsRecoveredWhenGarbageCollected()
    {
        await using var pool = Create(TimeSpan.FromSeconds(60), max: 1);
        OpenAndForget(pool.Source);
        Assert.AreEqual(1, pool.Stats.InUse);

        await Poll.UntilAsync(() =>
        {
            GC.Collect();
            pool.Time.Advance(pool.Source.Options.MaintenanceInterval); // the leak watch finds the collected borrower
            return pool.Stats is { ForgottenConnections: 1, Total: 0 };
        }, "the forgotten connection recovered");

        Assert.AreEqual(1, pool.Stats.LeaksDetected);
        Assert.AreEqual(0, pool.Server.OpenConnections);
        var log = pool.LogsWithId(4004);
        Assert.HasCount(1, log);
        AssertOnlyUserFrames(Frames(log[0].Message), nameof(OpenAndForget));

        await using var next = pool.Source.CreateConnection();
        var open = next.OpenAsync();
        Assert.IsTrue(open.IsCompletedSuccessfully, "the slot should be free");
    }

    [TestMethod]
    public async Task LeakByACallerThatWaited_NamesTheCallerNotTheThreadThatHandedItTheConnection()
    {
        await using var pool = Create(TimeSpan.FromSeconds(1), max: 1);
        var holder = await pool.OpenAsync();
        var waiting = OpenWhileExhaustedAsync(pool.Source); // queued: the returner below opens it on its own thread
        Assert.AreEqual(1, pool.Stats.Waiting);
        await Task.Run(() => holder.Dispose());
        await using var leaked = await waiting.Bounded();
        pool.Time.Advance(TimeSpan.FromSeconds(2));

        var leak = pool.LogsWithId(4001);
        Assert.HasCount(1, leak);
        AssertOnlyUserFrames(Frames(leak[0].Message), nameof(OpenWhileExhaustedAsync));
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static async Task<CovetDbConnection> OpenWhileExhaustedAsync(CovetDataSource source)
    {
        var connection = source.CreateConnection();
        await connection.OpenAsync();
        return connection;
    }

    [TestMethod]
    public async Task ForgottenOpenConnection_WhenThePoolIsDisposedBeforeTheLeakWatchRuns_IsClosedByTheDisposal()
    {
        var pool = Create(TimeSpan.FromSeconds(60), max: 1);
        OpenAndForget(pool.Source);
        GC.Collect();

        await pool.DisposeAsync(); // the maintenance timer never ticked

        Assert.AreEqual(1, pool.Stats.ForgottenConnections);
        Assert.AreEqual(0, pool.Server.OpenConnections, "the forgotten physical connection was closed with the pool");
    }

    [TestMethod]
    public async Task AdaptiveTraces_UnsampledLeak_IsReportedWithoutATraceAndSaysHowToGetOne()
    {
        await using var pool = Create(TimeSpan.FromSeconds(1), traces: CovetLeakStackTraces.Adaptive);
        var sampled = await pool.OpenAsync();              // the first checkout of the interval pays for the trace...
        await using var leaked = pool.Source.CreateConnection();
        await leaked.OpenAsync();                          // ...the next one, at the same instant, does not
        await sampled.DisposeAsync();
        pool.Time.Advance(TimeSpan.FromSeconds(2));

        var leak = pool.LogsWithId(4001);
        Assert.HasCount(1, leak, "the leak itself is reported whether or not its checkout was sampled");
        Assert.Contains("LeakStackTraces", leak[0].Message);
        Assert.IsEmpty(Frames(leak[0].Message));
    }

    [TestMethod]
    public async Task AdaptiveTraces_InAQuietPool_TheFirstLeakHasItsTrace()
    {
        await using var pool = Create(TimeSpan.FromSeconds(1), traces: CovetLeakStackTraces.Adaptive);
        await using var leaked = pool.Source.CreateConnection();
        await leaked.OpenAsync();
        pool.Time.Advance(TimeSpan.FromSeconds(2));

        var leak = pool.LogsWithId(4001);
        Assert.HasCount(1, leak);
        AssertOnlyUserFrames(Frames(leak[0].Message), nameof(AdaptiveTraces_InAQuietPool_TheFirstLeakHasItsTrace));
    }

    [TestMethod]
    public async Task AdaptiveTraces_AfterASuspectedLeak_EveryCheckoutIsTraced()
    {
        await using var pool = Create(TimeSpan.FromSeconds(1), traces: CovetLeakStackTraces.Adaptive);
        var first = await pool.OpenAsync();
        pool.Time.Advance(TimeSpan.FromSeconds(2));       // first leak suspected: capture-all mode
        await first.DisposeAsync();

        await using var second = pool.Source.CreateConnection();
        await second.OpenAsync();
        pool.Time.Advance(TimeSpan.FromSeconds(2));

        var leaks = pool.LogsWithId(4001);
        Assert.HasCount(2, leaks);
        AssertOnlyUserFrames(Frames(leaks[1].Message), nameof(AdaptiveTraces_AfterASuspectedLeak_EveryCheckoutIsTraced));
    }

    [TestMethod]
    public async Task AdaptiveTraces_SampleAtMostOneCheckoutPerInterval()
    {
        await using var pool = Create(TimeSpan.FromSeconds(60), traces: CovetLeakStackTraces.Adaptive);
        async Task<int> TracedCheckoutsAsync(int checkouts)
        {
            var traced = 0;
            for (var i = 0; i < checkouts; i++)
            {
                await using var connection = await pool.OpenAsync();
                if (pool.Source.Pool.Holders(1).Single().StackTrace is not null)
                    traced++;
            }
            return traced;
        }

        Assert.AreEqual(1, await TracedCheckoutsAsync(1000), "a burst at one instant: only its first checkout is traced");
        pool.Time.Advance(Covet.Data.Health.LeakWatch.TraceSampleInterval / 2);
        Assert.AreEqual(0, await TracedCheckoutsAsync(100), "still within the interval");
        pool.Time.Advance(Covet.Data.Health.LeakWatch.TraceSampleInterval / 2);
        Assert.AreEqual(1, await TracedCheckoutsAsync(100), "the next interval samples again");
    }

    [TestMethod]
    public async Task NeverTraces_LeakIsStillReported()
    {
        await using var pool = Create(TimeSpan.FromSeconds(1), traces: CovetLeakStackTraces.Never);
        await using var leaked = await pool.OpenAsync();
        pool.Time.Advance(TimeSpan.FromSeconds(2));
        Assert.HasCount(1, pool.LogsWithId(4001));
        Assert.IsNull(pool.Source.Pool.Holders(1).Single().StackTrace);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void OpenAndForget(CovetDataSource source)
    {
        var connection = source.CreateConnection();
        connection.Open();
        connection.QueryScalar("SELECT 1");
    }
}
