using Covet.Data.Tests.Fakes;
using Covet.Data.Tests.TestSupport;

namespace Covet.Data.Tests.Resilience;

[TestClass]
public sealed class CircuitBreakerTests
{
    private static readonly TimeSpan BreakDuration = TimeSpan.FromSeconds(10);

    private static TestPool Create(int threshold = 3) => TestPool.Create(o =>
    {
        o.CircuitBreakerFailureThreshold = threshold;
        o.CircuitBreakerBreakDuration = BreakDuration;
    });

    /// <summary>Makes <paramref name="count"/> failing opens; returns the last provider error.</summary>
    private static async Task<FakeDbException> FailOpens(TestPool pool, int count)
    {
        FakeDbException? last = null;
        for (var i = 0; i < count; i++)
        {
            await using var connection = pool.Source.CreateConnection();
            last = await Assert.ThrowsExactlyAsync<FakeDbException>(() => connection.OpenAsync());
        }
        return last!;
    }

    [TestMethod]
    public async Task Open_AfterThresholdConnectFailures_FailsFastWithoutTryingTheServer()
    {
        await using var pool = Create();
        pool.Server.RefuseConnections = true;
        var lastError = await FailOpens(pool, 3);
        var attempts = pool.ProviderConnectionObjects;

        await using var connection = pool.Source.CreateConnection();
        var e = await Assert.ThrowsExactlyAsync<CovetCircuitOpenException>(() => connection.OpenAsync());

        Assert.AreEqual(attempts, pool.ProviderConnectionObjects, "no physical connection should be attempted while the circuit is open");
        Assert.AreSame(lastError, e.InnerException);
        Assert.IsGreaterThan(TimeSpan.Zero, e.RetryAfter);
        Assert.IsLessThanOrEqualTo(BreakDuration, e.RetryAfter);
        Assert.IsTrue(e.IsTransient);
        Assert.AreEqual(CovetCircuitState.Open, pool.Stats.CircuitState);
        Assert.AreEqual(3, pool.Stats.ConnectionFailures, "a rejection is not a connection failure");
        Assert.AreEqual(0, pool.Stats.Total);
    }

    [TestMethod]
    public async Task Open_Sync_WhileCircuitOpen_FailsFast()
    {
        await using var pool = Create();
        pool.Server.RefuseConnections = true;
        await FailOpens(pool, 3);

        using var connection = pool.Source.CreateConnection();
        Assert.ThrowsExactly<CovetCircuitOpenException>(connection.Open);
        Assert.AreEqual(System.Data.ConnectionState.Closed, connection.State);
    }

    [TestMethod]
    public async Task Open_ManyRejectedCallers_LogTheOpeningOnce()
    {
        await using var pool = Create();
        pool.Server.RefuseConnections = true;
        await FailOpens(pool, 3);

        for (var i = 0; i < 6; i++)
        {
            await using var connection = pool.Source.CreateConnection();
            await Assert.ThrowsExactlyAsync<CovetCircuitOpenException>(() => connection.OpenAsync());
        }

        Assert.HasCount(1, pool.LogsWithId(6001));
        Assert.AreEqual(6, pool.Stats.CircuitRejections);
        Assert.HasCount(3, pool.LogsWithId(2002), "only real attempts log a connect failure");
    }

    [TestMethod]
    public async Task Circuit_ServerBack_MaintenanceProbeClosesIt()
    {
        await using var pool = Create();
        pool.Server.RefuseConnections = true;
        await FailOpens(pool, 3);

        // Probes keep failing while the server is down: no transition, no new log.
        pool.Time.Advance(TimeSpan.FromSeconds(5));
        Assert.AreEqual(CovetCircuitState.Open, pool.Stats.CircuitState);
        Assert.HasCount(1, pool.LogsWithId(6001));

        pool.Server.RefuseConnections = false;
        pool.Time.Advance(BreakDuration);
        await Poll.UntilAsync(() => pool.Stats.CircuitState == CovetCircuitState.Closed, "the probe closing the circuit");

        Assert.HasCount(1, pool.LogsWithId(6003));
        Assert.HasCount(1, pool.LogsWithId(6001));
        await using var connection = await pool.OpenAsync();
        Assert.AreEqual(1, await connection.QueryScalarAsync("SELECT 1"));
        Assert.AreEqual(1, pool.Server.TotalOpened, "the probe's connection is handed out");
    }

    [TestMethod]
    public async Task Circuit_AfterBreakDuration_HalfOpenTrialClosesIt()
    {
        await using var pool = Create();
        pool.Server.RefuseConnections = true;
        await FailOpens(pool, 3);
        pool.Time.Advance(BreakDuration);         // the probes during the break fail: still open
        Assert.AreEqual(CovetCircuitState.Open, pool.Stats.CircuitState);

        pool.Server.RefuseConnections = false;
        await using var connection = await pool.OpenAsync();    // the half-open trial

        Assert.AreEqual(CovetCircuitState.Closed, pool.Stats.CircuitState);
        Assert.HasCount(1, pool.LogsWithId(6001));
        Assert.HasCount(1, pool.LogsWithId(6002));
        Assert.HasCount(1, pool.LogsWithId(6003));
    }

    [TestMethod]
    public async Task Circuit_HalfOpenTrialFails_ReopensAndFailsFastAgain()
    {
        await using var pool = Create();
        pool.Server.RefuseConnections = true;
        await FailOpens(pool, 3);
        pool.Time.Advance(BreakDuration);

        await FailOpens(pool, 1);                 // the trial: a real attempt, with the real error
        Assert.AreEqual(CovetCircuitState.Open, pool.Stats.CircuitState);
        Assert.HasCount(2, pool.LogsWithId(6001), "closed→open, then half-open→open");

        await using var connection = pool.Source.CreateConnection();
        var e = await Assert.ThrowsExactlyAsync<CovetCircuitOpenException>(() => connection.OpenAsync());
        Assert.IsGreaterThan(TimeSpan.Zero, e.RetryAfter);
    }

    [TestMethod]
    public async Task QueryErrors_NeverOpenTheCircuit()
    {
        await using var pool = Create(threshold: 2);
        for (var i = 0; i < 10; i++)
        {
            await using var connection = await pool.OpenAsync();
            await Assert.ThrowsExactlyAsync<FakeDbException>(() => connection.ExecAsync("FAIL"));
        }

        Assert.AreEqual(CovetCircuitState.Closed, pool.Stats.CircuitState);
        Assert.IsEmpty(pool.LogsWithId(6001));
    }

    [TestMethod]
    public async Task ConnectFailures_InterruptedByASuccess_DoNotOpenTheCircuit()
    {
        await using var pool = Create(threshold: 3);
        pool.Server.FailNextOpens = 2;
        await FailOpens(pool, 2);
        await using (var ok = await pool.OpenAsync())
            await ok.ExecAsync("BREAK").ContinueWith(_ => { }); // destroy it so the next open connects again
        pool.Server.FailNextOpens = 2;
        await FailOpens(pool, 2);

        Assert.AreEqual(CovetCircuitState.Closed, pool.Stats.CircuitState, "failures must be consecutive");
    }

    [TestMethod]
    public async Task ThresholdZero_DisablesTheBreaker()
    {
        await using var pool = Create(threshold: 0);
        pool.Server.RefuseConnections = true;
        await FailOpens(pool, 10);
        Assert.AreEqual(CovetCircuitState.Closed, pool.Stats.CircuitState);
    }

    [TestMethod]
    public async Task TripCircuit_FailsFast_AndResetCircuitRecovers()
    {
        await using var pool = Create();
        pool.Source.TripCircuit();
        Assert.AreEqual(CovetCircuitState.Open, pool.Stats.CircuitState);

        await using (var connection = pool.Source.CreateConnection())
            await Assert.ThrowsExactlyAsync<CovetCircuitOpenException>(() => connection.OpenAsync());
        Assert.AreEqual(0, pool.Server.TotalOpened);

        pool.Source.ResetCircuit();
        Assert.AreEqual(CovetCircuitState.Closed, pool.Stats.CircuitState);
        await using (var connection = await pool.OpenAsync())
            Assert.AreEqual(1, await connection.QueryScalarAsync("SELECT 1"));
        Assert.HasCount(1, pool.LogsWithId(6001));
        Assert.HasCount(1, pool.LogsWithId(6003));
    }

    [TestMethod]
    public async Task TripCircuit_Twice_LogsOnce()
    {
        await using var pool = Create();
        pool.Source.TripCircuit();
        pool.Source.TripCircuit();
        Assert.HasCount(1, pool.LogsWithId(6001));
    }
}
