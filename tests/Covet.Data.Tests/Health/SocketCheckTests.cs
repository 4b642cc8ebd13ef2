using System.Data.Common;
using Covet.Data.Health;
using Covet.Data.Providers;
using Covet.Data.Tests.TestSupport;
using Microsoft.Extensions.Time.Testing;

namespace Covet.Data.Tests.Health;

/// <summary>
/// The checkout-time socket check's decisions (which connections to look at, what each answer means, the one warning
/// when a network driver's socket cannot be reached), with a scripted dialect and the fake clock. The looks themselves
/// run against the real drivers in the integration tests (SocketProbeTests, KilledIdleConnectionTests).
/// </summary>
[TestClass]
public sealed class SocketCheckTests
{
    private sealed class ScriptedDialect(string name, bool canProbe, SocketState answer) : ProviderDialect
    {
        public int Probes;
        public override string Name => name;
        public override bool CanProbeSocket => canProbe;
        public override SocketState ProbeSocket(DbConnection connection)
        {
            Probes++;
            return answer;
        }
    }

    private static SocketCheck? Create(ProviderDialect dialect, out Microsoft.Extensions.Logging.Testing.FakeLogCollector logs, TimeProvider? time = null)
    {
        var (collector, factory) = TestPool.CreateLogging();
        logs = collector;
        return SocketCheck.Create(dialect, new Covet.Data.Pooling.PoolClock(time ?? new FakeTimeProvider()), factory.CreateLogger("test"), "pool-a");
    }

    [TestMethod]
    [DataRow("postgresql")]
    [DataRow("mysql")]
    public void Create_ForANetworkDriverWhoseSocketCannotBeReached_IsOff_AndWarnsOnce(string provider)
    {
        var check = Create(new ScriptedDialect(provider, canProbe: false, SocketState.Unknown), out var logs);
        Assert.IsNull(check, "without the binding the pool keeps today's behaviour");
        var warnings = logs.GetSnapshot().Where(r => r.Id.Id == 3005).ToList();
        Assert.HasCount(1, warnings);
        Assert.AreEqual(Microsoft.Extensions.Logging.LogLevel.Warning, warnings[0].Level);
        StringAssert.Contains(warnings[0].Message, "pool-a");
        StringAssert.Contains(warnings[0].Message, provider);
    }

    [TestMethod]
    [DataRow("sqlite")]
    [DataRow("other_sql")]
    public void Create_ForAProviderWithoutSockets_IsOff_Silently(string provider)
    {
        Assert.IsNull(Create(new ScriptedDialect(provider, canProbe: false, SocketState.Unknown), out var logs));
        Assert.IsEmpty(logs.GetSnapshot());
    }

    [TestMethod]
    public void IsDue_OnlyPastTheThreshold_SoAHotConnectionIsNeverLookedAt()
    {
        var time = new FakeTimeProvider();
        var check = Create(new ScriptedDialect("postgresql", canProbe: true, SocketState.Quiet), out _, time)!;
        var returned = time.GetTimestamp();
        Assert.IsFalse(check.IsDue(returned, returned), "handed straight back");
        time.Advance(SocketCheck.Threshold);
        Assert.IsFalse(check.IsDue(returned, time.GetTimestamp()), "exactly at the threshold");
        time.Advance(TimeSpan.FromTicks(1));
        Assert.IsTrue(check.IsDue(returned, time.GetTimestamp()), "idle longer than the threshold");
        Assert.IsLessThan(TimeSpan.FromMilliseconds(1), SocketCheck.Threshold, "well under the gap between a return and a kill");
    }

    [TestMethod]
    public void IsDue_OnTheCoarseSystemClock_OnceATickBoundaryIsCrossed()
    {
        var clock = new Covet.Data.Pooling.PoolClock(TimeProvider.System);
        Assert.IsTrue(clock.IsCoarse);
        var (_, factory) = TestPool.CreateLogging();
        var check = SocketCheck.Create(new ScriptedDialect("postgresql", canProbe: true, SocketState.Quiet), clock, factory.CreateLogger("test"), "pool-a")!;
        Assert.IsFalse(check.IsDue(1000, 1000), "the same millisecond tick: not looked at (the coarse clock's limit)");
        Assert.IsTrue(check.IsDue(1000, 1001), "one tick later: looked at");
    }

    [TestMethod]
    // (int: the enums are internal, and a public test method cannot take them)
    [DataRow((int)SocketState.Closed, (int)SocketVerdict.Retire)]
    [DataRow((int)SocketState.Readable, (int)SocketVerdict.Ping)]
    [DataRow((int)SocketState.Quiet, (int)SocketVerdict.AsBefore)]
    [DataRow((int)SocketState.Unknown, (int)SocketVerdict.AsBefore)]
    public void Check_MapsWhatTheSocketShowsToWhatTheCheckoutDoes(int shownValue, int expectedValue)
    {
        var shown = (SocketState)shownValue;
        var expected = (SocketVerdict)expectedValue;
        var dialect = new ScriptedDialect("mysql", canProbe: true, shown);
        var check = Create(dialect, out var logs)!;
        using var connection = new Microsoft.Data.Sqlite.SqliteConnection();
        Assert.AreEqual(expected, check.Check(connection));
        Assert.AreEqual(1, dialect.Probes, "one look per check");
        Assert.IsEmpty(logs.GetSnapshot(), "no warning when the socket can be reached");
    }
}
