using System.Diagnostics.Metrics;

namespace Covet.Data.LoadTest.Measurement;

/// <summary>
/// Reads a provider pool's connection counts (idle / used) from the provider's own OpenTelemetry-style meter, so the
/// provider's pool can be charted next to Covet's <see cref="CovetPoolStatistics"/>. Npgsql publishes an observable
/// gauge (absolute values, read on demand); MySqlConnector an up-down counter (deltas, accumulated here).
/// Microsoft.Data.Sqlite publishes nothing, so its pool size is unknown.
/// </summary>
public sealed class ProviderPoolMeter : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly string _poolNameTag;
    private readonly string _stateTag;
    private readonly string _poolName;
    private readonly Lock _lock = new();
    private bool _observable;
    private long _idle, _used;           // accumulated deltas (up-down counter)
    private long _observedIdle, _observedUsed; // one round of observations (observable gauge)

    public ProviderPoolMeter(string meterName, string instrumentName, string poolNameTag, string stateTag, string poolName)
    {
        _poolNameTag = poolNameTag;
        _stateTag = stateTag;
        _poolName = poolName;
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == meterName && instrument.Name == instrumentName)
            {
                _observable |= instrument.IsObservable;
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<int>((instrument, value, tags, _) => OnMeasurement(instrument, value, tags));
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => OnMeasurement(instrument, value, tags));
        _listener.Start();
    }

    private void OnMeasurement(Instrument instrument, long value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        string? pool = null, state = null;
        foreach (var tag in tags)
        {
            if (tag.Key == _poolNameTag)
                pool = tag.Value?.ToString();
            else if (tag.Key == _stateTag)
                state = tag.Value?.ToString();
        }
        if (pool != _poolName)
            return;
        lock (_lock)
        {
            var idle = state == "idle";
            if (instrument.IsObservable)
            {
                if (idle) _observedIdle += value; else _observedUsed += value;
            }
            else
            {
                if (idle) _idle += value; else _used += value;
            }
        }
    }

    /// <summary>Current (idle, used) physical connections of the provider's pool.</summary>
    public (int Idle, int Used) Read()
    {
        if (_observable)
        {
            lock (_lock)
                _observedIdle = _observedUsed = 0;
            _listener.RecordObservableInstruments(); // calls back synchronously
            lock (_lock)
                return ((int)_observedIdle, (int)_observedUsed);
        }
        lock (_lock)
            return ((int)_idle, (int)_used);
    }

    public void Dispose() => _listener.Dispose();
}
