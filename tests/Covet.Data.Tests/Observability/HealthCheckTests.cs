using Covet.Data.Tests.TestSupport;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Covet.Data.Tests.Observability;

[TestClass]
public sealed class HealthCheckTests
{
    private static Task<HealthCheckResult> Check(TestPool pool) =>
        new CovetPoolHealthCheck(pool.Source).CheckHealthAsync(new HealthCheckContext
        {
            Registration = new HealthCheckRegistration("covet", _ => null!, HealthStatus.Unhealthy, null),
        });

    [TestMethod]
    public async Task HealthCheck_IdlePool_IsHealthyWithStatisticsAsData()
    {
        await using var pool = TestPool.Create(o => o.MaxPoolSize = 4);
        var result = await Check(pool);
        Assert.AreEqual(HealthStatus.Healthy, result.Status);
        Assert.AreEqual(4, result.Data["max"]);
        Assert.AreEqual(1, pool.Server.TotalOpened, "with no idle connection the check proves the database is reachable");
    }

    [TestMethod]
    public async Task HealthCheck_FullyUsedPool_IsDegraded()
    {
        await using var pool = TestPool.Create(o => o.MaxPoolSize = 2);
        await using var a = await pool.OpenAsync();
        await using var b = await pool.OpenAsync();
        var result = await Check(pool);
        Assert.AreEqual(HealthStatus.Degraded, result.Status);
        StringAssert.Contains(result.Description, "utilization 100");
    }

    [TestMethod]
    public async Task HealthCheck_PausedOrDrainedPool_IsDegradedWithoutProbing()
    {
        await using var pool = TestPool.Create(o => o.MaxPoolSize = 4);
        await pool.Source.PauseAsync();
        var paused = await Check(pool);
        Assert.AreEqual(HealthStatus.Degraded, paused.Status);
        StringAssert.Contains(paused.Description, "paused");
        Assert.AreEqual("Paused", paused.Data["state"]);
        Assert.AreEqual(0, pool.Server.TotalOpened, "a paused pool is not probed: the open would only wait");

        pool.Source.Resume();
        Assert.AreEqual(HealthStatus.Healthy, (await Check(pool)).Status);
    }

    [TestMethod]
    public async Task HealthCheck_OpenCircuit_IsUnhealthy()
    {
        await using var pool = TestPool.Create();
        pool.Source.TripCircuit();
        var result = await Check(pool);
        Assert.AreEqual(HealthStatus.Unhealthy, result.Status);
        StringAssert.Contains(result.Description, "circuit open");
    }

    [TestMethod]
    public async Task HealthCheck_DatabaseUnreachable_IsUnhealthy()
    {
        await using var pool = TestPool.Create(script: s => s.RefuseConnections = true);
        var result = await Check(pool);
        Assert.AreEqual(HealthStatus.Unhealthy, result.Status);
        Assert.IsNotNull(result.Exception);
    }
}
