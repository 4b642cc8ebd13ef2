using System.Diagnostics;
using Npgsql;

namespace Covet.Data.IntegrationTests.FaultInjection;

/// <summary>The harness itself: each switch of <see cref="LoopbackFaultProxy"/> does what the scenarios rely on (plain Npgsql, no Covet).</summary>
[TestClass]
public sealed class LoopbackFaultProxyTests
{
    private static NpgsqlConnection Unpooled(LoopbackFaultProxy proxy, int timeoutSeconds = 5) =>
        new(new NpgsqlConnectionStringBuilder(FaultDb.Postgres.ConnectionStringVia(proxy.Port, "proxy-self-test"))
        {
            Pooling = false,
            Timeout = timeoutSeconds,
        }.ConnectionString);

    private static async Task<int> SelectOneAsync(NpgsqlConnection connection, CancellationToken cancellationToken = default)
    {
        await using var command = new NpgsqlCommand("select 1", connection);
        return (int)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    [TestMethod]
    public async Task Forwards_Cuts_Refuses_BlackHoles_AndDelays()
    {
        await using var proxy = new LoopbackFaultProxy(FaultDb.Postgres.ServerPort);

        // Forwarding, and the counts.
        await using (var connection = Unpooled(proxy))
        {
            await connection.OpenAsync();
            Assert.AreEqual(1, await SelectOneAsync(connection));
            Assert.AreEqual(1, proxy.Active);
            Assert.AreEqual(1, proxy.Accepted);

            // CutAll: the borrower's next round trip fails with the provider's error.
            Assert.AreEqual(1, proxy.CutAll());
            var cut = await Assert.ThrowsAsync<NpgsqlException>(() => SelectOneAsync(connection));
            Console.WriteLine($"after CutAll: {cut.GetType().Name}: {cut.Message}");
        }
        Assert.IsTrue(await Measure.UntilAsync(() => proxy.Active == 0, TimeSpan.FromSeconds(5)), proxy.ToString());

        // RefuseNew: connections are accepted and reset at once.
        proxy.RefuseNew = true;
        await using (var connection = Unpooled(proxy))
        {
            var clock = Stopwatch.StartNew();
            var refused = await Assert.ThrowsAsync<NpgsqlException>(() => connection.OpenAsync());
            Console.WriteLine($"refused open failed in {Measure.Ms(clock.Elapsed)}: {refused.Message}");
            Assert.IsTrue(clock.Elapsed < TimeSpan.FromSeconds(1), $"a refused open fails fast ({Measure.Ms(clock.Elapsed)})");
        }
        // At least one: depending on when the reset lands, Npgsql may retry once (SSL Prefer falls back to no SSL).
        Assert.IsTrue(proxy.Refused >= 1, proxy.ToString());
        proxy.RefuseNew = false;

        // BlackHole: an open connection gets no answer (and no error) until it lifts.
        await using (var connection = Unpooled(proxy))
        {
            await connection.OpenAsync();
            proxy.BlackHole = true;
            var query = SelectOneAsync(connection);
            var finished = await Task.WhenAny(query, Task.Delay(300));
            Assert.AreNotSame(query, finished, "a black-holed query must not complete");
            proxy.BlackHole = false;
            Assert.AreEqual(1, await query.WaitAsync(TimeSpan.FromSeconds(5)), "held bytes flow once the black hole lifts");
        }

        // Latency: each direction is delayed, so a round trip costs at least twice the latency.
        await using (var connection = Unpooled(proxy))
        {
            await connection.OpenAsync();
            proxy.Latency = TimeSpan.FromMilliseconds(20);
            var clock = Stopwatch.StartNew();
            await SelectOneAsync(connection);
            Console.WriteLine($"round trip with 20 ms latency: {Measure.Ms(clock.Elapsed)}");
            Assert.IsTrue(clock.Elapsed >= TimeSpan.FromMilliseconds(36), Measure.Ms(clock.Elapsed));
            proxy.Latency = TimeSpan.Zero;

            proxy.ConnectLatency = TimeSpan.FromMilliseconds(100);
            await using var second = Unpooled(proxy);
            clock.Restart();
            await second.OpenAsync();
            Console.WriteLine($"open with 100 ms connect latency: {Measure.Ms(clock.Elapsed)}");
            Assert.IsTrue(clock.Elapsed >= TimeSpan.FromMilliseconds(95), Measure.Ms(clock.Elapsed));
        }
        Console.WriteLine(proxy);
    }
}
