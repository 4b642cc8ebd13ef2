using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Covet.Data.Diagnostics;
using Covet.Data.Tests.TestSupport;

namespace Covet.Data.Tests.Observability;

[TestClass]
public sealed class MetricsTests
{
    /// <summary>Collects every measurement of Covet's meter for one pool (pools of parallel tests are filtered out by name).</summary>
    private sealed class PoolMeterListener : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly string _poolName;
        public readonly ConcurrentQueue<(string Instrument, double Value, Dictionary<string, object?> Tags)> Measurements = new();

        public PoolMeterListener(string poolName)
        {
            _poolName = poolName;
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == CovetMetrics.Name)
                    listener.EnableMeasurementEvents(instrument);
            };
            _listener.SetMeasurementEventCallback<int>((i, v, tags, _) => Add(i, v, tags));
            _listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Add(i, v, tags));
            _listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Add(i, v, tags));
            _listener.Start();
        }

        private void Add(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var dict = new Dictionary<string, object?>();
            foreach (var tag in tags)
                dict[tag.Key] = tag.Value;
            if (Equals(dict.GetValueOrDefault(CovetMetrics.PoolNameTag), _poolName))
                Measurements.Enqueue((instrument.Name, value, dict));
        }

        /// <summary>Latest observed value of an observable instrument (optionally for one connection state).</summary>
        public double Observe(string instrument, string? state = null)
        {
            Measurements.Clear();
            _listener.RecordObservableInstruments();
            return Measurements.Last(m => m.Instrument == instrument && (state is null || Equals(m.Tags.GetValueOrDefault(CovetMetrics.StateTag), state))).Value;
        }

        public int CountOf(string instrument) => Measurements.Count(m => m.Instrument == instrument);

        public void Dispose() => _listener.Dispose();
    }

    [TestMethod]
    public async Task Meter_ReportsSemanticConventionInstruments_ForAKnownScenario()
    {
        var name = $"metrics-{Guid.NewGuid():N}";
        using var listener = new PoolMeterListener(name);
        await using var pool = TestPool.Create(o =>
        {
            o.PoolName = name;
            o.MaxPoolSize = 3;
            o.MinPoolSize = 0;
            o.AcquireTimeout = TimeSpan.FromSeconds(2);
            o.AutoScale = false;
        });

        var a = await pool.OpenAsync();
        var b = await pool.OpenAsync();
        Assert.AreEqual(2, listener.CountOf("db.client.connection.create_time"), "a histogram sample per physical connection made");
        Assert.AreEqual(2, listener.CountOf("db.client.connection.wait_time"), "a histogram sample per checkout");

        Assert.AreEqual(2, listener.Observe("db.client.connection.count", "used"));
        Assert.AreEqual(0, listener.Observe("db.client.connection.count", "idle"));
        Assert.AreEqual(3, listener.Observe("db.client.connection.max"));
        Assert.AreEqual(0, listener.Observe("db.client.connection.idle.min"));

        await b.DisposeAsync();
        Assert.AreEqual(1, listener.CountOf("db.client.connection.use_time"), "a histogram sample per return");
        Assert.AreEqual(1, listener.Observe("db.client.connection.count", "used"));
        Assert.AreEqual(1, listener.Observe("db.client.connection.count", "idle"));

        // Exhaust the pool and time out one waiter on the fake clock.
        var c = await pool.OpenAsync();
        var d = await pool.OpenAsync();
        var waiter = pool.OpenAsync();
        await Poll.UntilAsync(() => pool.Stats.Waiting == 1, "one caller waiting");
        Assert.AreEqual(1, listener.Observe("db.client.connection.pending_requests"));
        pool.Time.Advance(TimeSpan.FromSeconds(3));
        await Assert.ThrowsExactlyAsync<CovetPoolExhaustedException>(() => waiter);
        Assert.AreEqual(1, listener.Observe("db.client.connection.timeouts"));
        Assert.AreEqual(0, listener.Observe("db.client.connection.pending_requests"));
        Assert.AreEqual(0, listener.Observe("covet.pool.circuit.state"));
        Assert.AreEqual(0, listener.Observe("covet.pool.state"), "running");
        await pool.Source.PauseAsync();
        Assert.AreEqual(1, listener.Observe("covet.pool.state"), "paused");
        pool.Source.Resume();
        Assert.AreEqual(0, listener.Observe("covet.pool.state"));

        foreach (var connection in new[] { a, c, d })
            await connection.DisposeAsync();
    }
}
