using Covet.Data.Tests.TestSupport;

namespace Covet.Data.Tests.Pooling;

/// <summary>Live reconfiguration (<see cref="CovetDataSource.Reconfigure"/>) on the fake provider, with the fake clock deciding every timeout.</summary>
[TestClass]
public sealed class ReconfigureTests
{
    private static TestPool CreatePool(int max, int min = 0, Action<CovetPoolOptions>? configure = null) => TestPool.Create(o =>
    {
        o.MaxPoolSize = max;
        o.MinPoolSize = min;
        o.AcquireTimeout = TimeSpan.FromSeconds(30);
        o.HealthCheckInterval = TimeSpan.Zero;
        configure?.Invoke(o);
    });

    private static void Reconfigure(TestPool pool, Action<CovetPoolOptions> change)
    {
        var options = pool.Source.Options;
        change(options);
        pool.Source.Reconfigure(options);
    }

    private static async Task<List<CovetDbConnection>> OpenMany(TestPool pool, int count)
    {
        var list = new List<CovetDbConnection>();
        for (var i = 0; i < count; i++)
            list.Add(await pool.OpenAsync());
        return list;
    }

    private static (List<CovetDbConnection> Connections, List<Task> Opens) QueueOpens(TestPool pool, int count)
    {
        var connections = new List<CovetDbConnection>();
        var opens = new List<Task>();
        for (var i = 0; i < count; i++)
        {
            var connection = pool.Source.CreateConnection();
            connections.Add(connection);
            opens.Add(connection.OpenAsync());
            Poll.Until(() => pool.Stats.Waiting == opens.Count, $"waiter {i} queued");
        }
        return (connections, opens);
    }

    [TestMethod]
    public async Task RaisedMaximum_ServesQueuedWaitersAtOnce_OldestFirst()
    {
        await using var pool = CreatePool(max: 2);
        var held = await OpenMany(pool, 2);
        var (waiting, opens) = QueueOpens(pool, 3);

        Reconfigure(pool, o => o.MaxPoolSize = 4);

        await Task.WhenAll(opens.Take(2)).Bounded();
        Assert.IsFalse(await Poll.CompletesAsync(opens[2], TimeSpan.FromMilliseconds(50)), "more waiters served than the new room");
        Assert.AreEqual(4, pool.Server.OpenConnections);
        Assert.AreEqual(4, pool.Stats.MaxPoolSize);
        Assert.AreEqual(1, pool.Stats.Waiting);

        await held[0].CloseAsync();
        await opens[2].Bounded();
        foreach (var c in held.Concat(waiting))
            await c.DisposeAsync();
    }

    [TestMethod]
    public async Task LoweredMaximum_ClosesSurplusIdleNow_AndBorrowedOnesAsTheyReturn()
    {
        await using var pool = CreatePool(max: 5);
        var connections = await OpenMany(pool, 5);
        await connections[3].CloseAsync();
        await connections[4].CloseAsync();
        await Poll.UntilAsync(() => pool.Stats.Idle == 2, "two idle");

        Reconfigure(pool, o => o.MaxPoolSize = 2);

        await Poll.UntilAsync(() => pool.Server.OpenConnections == 3, "the two idle connections closed at once");
        Assert.AreEqual(3, pool.Stats.InUse, "borrowed connections are not taken from their borrowers");
        Assert.AreEqual(1, await connections[0].QueryScalarAsync("SELECT 1"), "a borrowed connection keeps working");

        await connections[0].CloseAsync();
        await Poll.UntilAsync(() => pool.Server.OpenConnections == 2, "the returned surplus connection closed");
        Assert.AreEqual(0, pool.Stats.Idle);

        await connections[1].CloseAsync();
        await Poll.UntilAsync(() => pool.Stats.Idle == 1, "within the new maximum, a returned connection is pooled again");
        Assert.AreEqual(2, pool.Stats.Total);
        Assert.IsTrue(pool.LogsWithId(2003).Count(r => r.Message.Contains("pool shrunk", StringComparison.Ordinal)) == 3);
        await connections[2].DisposeAsync();
    }

    [TestMethod]
    public async Task LoweredMaximum_WaiterIsServedOnlyOnceThePoolIsWithinIt()
    {
        await using var pool = CreatePool(max: 3);
        var held = await OpenMany(pool, 3);
        var (waiting, opens) = QueueOpens(pool, 1);

        Reconfigure(pool, o => o.MaxPoolSize = 2);
        await held[0].CloseAsync(); // 3 → 2: closed, its slot is not handed on
        await Poll.UntilAsync(() => pool.Server.OpenConnections == 2, "the surplus connection closed");
        Assert.IsFalse(await Poll.CompletesAsync(opens[0], TimeSpan.FromMilliseconds(50)), "the waiter got a slot above the new maximum");

        await held[1].CloseAsync(); // within the maximum now: handed to the waiter
        await opens[0].Bounded();
        Assert.AreEqual(2, pool.Server.OpenConnections);
        Assert.AreEqual(3, pool.Server.TotalOpened, "the waiter got the returned connection, nothing new was opened");
        Assert.IsLessThanOrEqualTo(3, pool.Server.PeakOpenConnections);
        foreach (var c in held.Concat(waiting))
            await c.DisposeAsync();
    }

    [TestMethod]
    public async Task RaisedMinimum_WarmsUpInTheBackground()
    {
        await using var pool = CreatePool(max: 10);
        Reconfigure(pool, o => o.MinPoolSize = 3);
        await Poll.UntilAsync(() => pool.Stats.Idle == 3, "warmed up to the new minimum");
        Assert.AreEqual(3, pool.Server.OpenConnections);
    }

    [TestMethod]
    public async Task ShorterMaxLifetime_GivesExistingConnectionsANewExpiry_WithTheSpread()
    {
        await using var pool = CreatePool(max: 10, configure: o => { o.MaxLifetime = TimeSpan.FromHours(1); o.IdleTimeout = TimeSpan.Zero; o.PrePing = false; });
        foreach (var c in await OpenMany(pool, 4))
            await c.DisposeAsync();
        await pool.UntilQuiescentAsync();
        var originals = pool.OpenedPhysicals;
        pool.Time.Advance(TimeSpan.FromSeconds(10));

        Reconfigure(pool, o => o.MaxLifetime = TimeSpan.FromSeconds(100)); // measured from each connection's creation

        pool.Time.Advance(TimeSpan.FromSeconds(87)); // 97 s since creation: before 97.5 % of the new lifetime
        Assert.IsTrue(originals.All(c => c.State == System.Data.ConnectionState.Open), "retired before 97.5 % of the new lifetime");
        pool.Time.Advance(TimeSpan.FromSeconds(4)); // 101 s: past it
        await Poll.UntilAsync(() => originals.All(c => c.State == System.Data.ConnectionState.Closed), "every connection retired at its new expiry");
        Assert.AreEqual(0, pool.Stats.Total);
    }

    [TestMethod]
    public async Task ShorterAcquireTimeout_AppliesToTheNextOpen()
    {
        await using var pool = CreatePool(max: 1);
        await using var holder = await pool.OpenAsync();
        Reconfigure(pool, o => o.AcquireTimeout = TimeSpan.FromSeconds(2));

        await using var waiting = pool.Source.CreateConnection();
        var open = waiting.OpenAsync();
        await Poll.UntilAsync(() => pool.Stats.Waiting == 1, "the open queued");
        pool.Time.Advance(TimeSpan.FromSeconds(2));
        var e = await Assert.ThrowsExactlyAsync<CovetPoolExhaustedException>(() => open.Bounded());
        StringAssert.Contains(e.Message, "2.0 s");
    }

    [TestMethod]
    public async Task AliveWindowAndPrePing_ApplyFromTheNextCheckout()
    {
        await using var pool = CreatePool(max: 2, configure: o => { o.PrePing = false; o.LeakDetectionThreshold = TimeSpan.Zero; });
        (await pool.OpenAsync()).Dispose();
        await pool.UntilQuiescentAsync();
        pool.Time.Advance(TimeSpan.FromSeconds(5));
        pool.Server.ClearLog();
        (await pool.OpenAsync()).Dispose();
        Assert.IsFalse(pool.Server.ExecutedCommands.Any(c => c.Contains("SELECT 1", StringComparison.Ordinal)), "pinged with pre-ping off");

        Reconfigure(pool, o => { o.PrePing = true; o.AliveBypassWindow = TimeSpan.FromSeconds(1); });
        await pool.UntilQuiescentAsync();
        pool.Time.Advance(TimeSpan.FromSeconds(5));
        (await pool.OpenAsync()).Dispose();
        Assert.IsTrue(pool.Server.ExecutedCommands.Any(c => c.Contains("SELECT 1", StringComparison.Ordinal)), "no pre-ping after turning it on");
    }

    [TestMethod]
    public async Task LeakDetectionTurnedOnLive_ReportsTheNextLeakWithItsStack()
    {
        await using var pool = CreatePool(max: 2, configure: o => { o.LeakDetectionThreshold = TimeSpan.Zero; o.MaxCheckoutDuration = TimeSpan.Zero; });
        Reconfigure(pool, o => { o.LeakDetectionThreshold = TimeSpan.FromSeconds(10); o.LeakStackTraces = CovetLeakStackTraces.Always; });

        await using var leaked = await OpenTheLeakAsync(pool);
        pool.Time.Advance(TimeSpan.FromSeconds(11));
        await Poll.UntilAsync(() => pool.LogsWithId(4001).Count == 1, "the leak reported");
        StringAssert.Contains(pool.LogsWithId(4001)[0].Message, nameof(OpenTheLeakAsync));
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static async Task<CovetDbConnection> OpenTheLeakAsync(TestPool pool)
    {
        var connection = pool.Source.CreateConnection();
        await connection.OpenAsync();
        return connection;
    }

    [TestMethod]
    public async Task BreakerThresholdLowered_OneFailureOpensTheCircuit_AndZeroTurnsItOffAndClosesIt()
    {
        await using var pool = CreatePool(max: 2, configure: o => o.CircuitBreakerFailureThreshold = 5);
        Reconfigure(pool, o => o.CircuitBreakerFailureThreshold = 1);
        pool.Server.FailNextOpens = 1;
        await using var connection = pool.Source.CreateConnection();
        await Assert.ThrowsAsync<Exception>(() => connection.OpenAsync());
        Assert.AreEqual(CovetCircuitState.Open, pool.Stats.CircuitState);

        Reconfigure(pool, o => o.CircuitBreakerFailureThreshold = 0);
        Assert.AreEqual(CovetCircuitState.Closed, pool.Stats.CircuitState);
        await connection.OpenAsync().Bounded();
    }

    [TestMethod]
    public async Task InvalidOptions_AreRejectedWhole_NamingTheSetting_AndThePoolKeepsItsOwn()
    {
        await using var pool = CreatePool(max: 4, min: 1);
        var e = Assert.ThrowsExactly<CovetConfigurationException>(() => Reconfigure(pool, o => { o.AcquireTimeout = TimeSpan.FromSeconds(1); o.MinPoolSize = 9; }));
        Assert.AreEqual(nameof(CovetPoolOptions.MinPoolSize), e.Setting);
        e = Assert.ThrowsExactly<CovetConfigurationException>(() => Reconfigure(pool, o => o.MaxPoolSize = 0));
        Assert.AreEqual(nameof(CovetPoolOptions.MaxPoolSize), e.Setting);

        Assert.AreEqual(4, pool.Source.Options.MaxPoolSize);
        Assert.AreEqual(TimeSpan.FromSeconds(30), pool.Source.Options.AcquireTimeout, "part of a rejected set was applied");
        Assert.IsEmpty(pool.LogsWithId(7004));
        await using var connection = await pool.OpenAsync();
        Assert.AreEqual(1, await connection.QueryScalarAsync("SELECT 1"));
    }

    [TestMethod]
    public async Task OptionsThatCannotChangeLive_AreRejectedNamingThem()
    {
        await using var pool = CreatePool(max: 4);
        foreach (var (setting, change) in new (string, Action<CovetPoolOptions>)[]
                 {
                     (nameof(CovetPoolOptions.PoolName), o => o.PoolName = "renamed"),
                     (nameof(CovetPoolOptions.TimeProvider), o => o.TimeProvider = TimeProvider.System),
                     (nameof(CovetPoolOptions.LoggerFactory), o => o.LoggerFactory = null),
                     (nameof(CovetPoolOptions.ResetSessionOnReturn), o => o.ResetSessionOnReturn = false),
                     (nameof(CovetPoolOptions.ResetQuery), o => o.ResetQuery = "DISCARD ALL"),
                 })
        {
            var e = Assert.ThrowsExactly<CovetConfigurationException>(() => Reconfigure(pool, o => { o.MaxPoolSize = 8; change(o); }), setting);
            Assert.AreEqual(setting, e.Setting);
            StringAssert.Contains(e.Message, "cannot change on a running pool");
        }
        Assert.AreEqual(4, pool.Source.Options.MaxPoolSize, "a rejected set changed the maximum");
    }

    [TestMethod]
    public async Task Options_IsACopy_ChangesGoThroughReconfigureOnly()
    {
        await using var pool = CreatePool(max: 4);
        pool.Source.Options.MaxPoolSize = 1;
        Assert.AreEqual(4, pool.Source.Options.MaxPoolSize);
        Assert.AreEqual(4, pool.Stats.MaxPoolSize);

        var options = pool.Source.Options;
        options.MaxPoolSize = 6;
        pool.Source.Reconfigure(options);
        options.MaxPoolSize = 1; // the pool took a copy
        Assert.AreEqual(6, pool.Source.Options.MaxPoolSize);
    }

    [TestMethod]
    public async Task Reconfigure_LogsOldAndNewValues_WithoutSecrets()
    {
        await using var pool = CreatePool(max: 4);
        Reconfigure(pool, o =>
        {
            o.MaxPoolSize = 8;
            o.AcquireTimeout = TimeSpan.FromSeconds(5);
            o.PasswordProvider = _ => ValueTask.FromResult("s3cret-Pa55");
        });
        var line = pool.LogsWithId(7004).Single().Message;
        StringAssert.Contains(line, "MaxPoolSize 4 → 8");
        StringAssert.Contains(line, "AcquireTimeout 00:00:30 → 00:00:05");
        StringAssert.Contains(line, "PasswordProvider (none) → (set)");
        Assert.DoesNotContain("s3cret", line);

        pool.Source.Reconfigure(pool.Source.Options); // nothing changed: nothing logged
        Assert.HasCount(1, pool.LogsWithId(7004));
    }

    [TestMethod]
    public async Task CovetPools_ReconfigureByName_ChangesEveryPoolOfThatName_OrNoneWhenInvalid()
    {
        var name = "reconfigure-" + Guid.NewGuid().ToString("N");
        await using var a = CreatePool(max: 3, configure: o => o.PoolName = name);
        await using var b = CreatePool(max: 5, configure: o => o.PoolName = name);

        Assert.AreEqual(2, CovetPools.Reconfigure(name, o => o.MaxPoolSize += 1));
        Assert.AreEqual(4, a.Stats.MaxPoolSize, "each pool's own settings are the base of the change");
        Assert.AreEqual(6, b.Stats.MaxPoolSize);

        Assert.ThrowsExactly<CovetConfigurationException>(() => CovetPools.Reconfigure(name, o => o.MinPoolSize = 5)); // valid for b, not for a
        Assert.AreEqual(0, b.Stats.MinPoolSize, "one pool was changed although the set was rejected for another");
        Assert.AreEqual(0, CovetPools.Reconfigure("no-such-pool", o => o.MaxPoolSize = 1));
    }

    [TestMethod]
    public async Task ConcurrentLoad_WhileTheMaximumChanges_KeepsTheInvariants()
    {
        await using var pool = CreatePool(max: 4, configure: o => { o.PrePing = false; o.LeakDetectionThreshold = TimeSpan.Zero; o.MaxCheckoutDuration = TimeSpan.Zero; });
        using var stop = new CancellationTokenSource();
        var workers = Enumerable.Range(0, 12).Select(w => Task.Run(async () =>
        {
            var checkouts = 0;
            while (!stop.IsCancellationRequested)
            {
                await using var connection = pool.Source.CreateConnection();
                if (w % 2 == 0)
                    await connection.OpenAsync();
                else
                    connection.Open();
                Assert.AreEqual(w, await connection.QueryScalarAsync($"SELECT {w}"));
                checkouts++;
            }
            return checkouts;
        })).ToArray();

        var random = new Random(14);
        var peakAllowed = 4;
        for (var i = 0; i < 200; i++)
        {
            var max = random.Next(1, 9);
            peakAllowed = Math.Max(peakAllowed, max);
            Reconfigure(pool, o => { o.MaxPoolSize = max; o.MinPoolSize = Math.Min(o.MinPoolSize, max); });
            await Task.Delay(1);
        }
        Reconfigure(pool, o => o.MaxPoolSize = 3);
        stop.Cancel();
        var done = await Task.WhenAll(workers).Bounded(TimeSpan.FromSeconds(30));

        Assert.IsTrue(done.All(n => n > 0), "a worker starved");
        Assert.AreEqual(0, pool.Server.ConcurrentUseViolations, "a connection was held by two borrowers");
        Assert.IsLessThanOrEqualTo(peakAllowed, pool.Server.PeakOpenConnections);
        await pool.UntilQuiescentAsync();
        var stats = pool.Stats;
        Assert.AreEqual(stats.Total, stats.Idle + stats.InUse);
        Assert.IsLessThanOrEqualTo(3, stats.Total, "the pool did not shrink to the final maximum");
        Assert.AreEqual(stats.Total, pool.Server.OpenConnections, "a slot was lost or a connection leaked");
    }
}
