using Covet.Data.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Covet.Data.Resilience;

/// <summary>
/// Fails fast while the database is down. Closed → Open after <c>threshold</c> consecutive connection failures;
/// Open → Half-open after the break duration (or at once when a background probe connects); Half-open lets exactly one
/// attempt through: success closes, failure re-opens. Every transition is logged once.
/// </summary>
/// <remarks>
/// The hot path (<see cref="ThrowIfOpen"/> while closed) is one volatile read. Transitions take a private lock; they are
/// rare by definition. Only failures to open a physical connection are reported here, so query errors never count.
/// </remarks>
internal sealed class CircuitBreaker(int threshold, TimeSpan breakDuration, TimeProvider time, ILogger logger, string poolName)
{
    private readonly Lock _lock = new();
    private volatile int _threshold = threshold;          // replaced by Configure (a live reconfiguration)
    private TimeSpan _breakDuration = breakDuration;       // guarded by _lock once the breaker is in use
    private volatile CovetCircuitState _state = CovetCircuitState.Closed;
    private int _consecutiveFailures;
    private long _openedAt;
    private DateTimeOffset _openedAtUtc;
    private Exception? _lastError;
    private bool _halfOpenAttemptInFlight;
    private long _rejections;

    public bool Enabled => _threshold > 0;

    /// <summary>
    /// New settings from a live reconfiguration: they apply to the next failure and to the current break (its end moves
    /// with the new duration). Turning the breaker off (threshold 0) closes it at once.
    /// </summary>
    public void Configure(int threshold, TimeSpan breakDuration)
    {
        lock (_lock)
        {
            _threshold = threshold;
            _breakDuration = breakDuration;
        }
        if (threshold == 0 && _state != CovetCircuitState.Closed)
            Reset();
    }
    public CovetCircuitState State => _state;
    public long Rejections => Interlocked.Read(ref _rejections);
    public Exception? LastError => _lastError;

    /// <summary>Retry-after for the current open state (zero when not open).</summary>
    public TimeSpan RetryAfter
    {
        get
        {
            lock (_lock)
                return _state == CovetCircuitState.Open ? Max(TimeSpan.Zero, _breakDuration - time.GetElapsedTime(_openedAt)) : TimeSpan.Zero;
        }
    }

    /// <summary>
    /// Called before an attempt to reach the database. Throws <see cref="CovetCircuitOpenException"/> while open; moves to
    /// half-open and lets this one caller through once the break is over. Returns whether the caller holds the half-open trial.
    /// </summary>
    public bool ThrowIfOpen()
    {
        if (_state == CovetCircuitState.Closed)
            return false;
        lock (_lock)
        {
            if (_state == CovetCircuitState.Closed)
                return false;
            if (_state == CovetCircuitState.Open && time.GetElapsedTime(_openedAt) >= _breakDuration)
            {
                _state = CovetCircuitState.HalfOpen;
                CovetLog.CircuitHalfOpen(logger, poolName);
            }
            if (_state == CovetCircuitState.HalfOpen && !_halfOpenAttemptInFlight)
            {
                _halfOpenAttemptInFlight = true;
                return true;
            }
            throw RejectLocked();
        }
    }

    private CovetCircuitOpenException RejectLocked()
    {
        {
            Interlocked.Increment(ref _rejections);
            var retryAfter = _state == CovetCircuitState.Open ? Max(TimeSpan.Zero, _breakDuration - time.GetElapsedTime(_openedAt)) : TimeSpan.Zero;
            return new CovetCircuitOpenException(
                $"Pool '{poolName}': the circuit breaker is open since {_openedAtUtc:O} after {_consecutiveFailures} consecutive connection failures; " +
                $"failing fast. Next attempt in {retryAfter.TotalSeconds:F1} s. The last error is the inner exception.", _lastError)
            {
                PoolName = poolName,
                OpenedAt = _openedAtUtc,
                RetryAfter = retryAfter,
            };
        }
    }

    /// <summary>Throws while the circuit is open and the break is not over; otherwise returns (the trial is taken in <see cref="ThrowIfOpen"/>).</summary>
    public void ThrowIfRejecting()
    {
        if (_state != CovetCircuitState.Open)
            return;
        lock (_lock)
        {
            if (_state == CovetCircuitState.Open && time.GetElapsedTime(_openedAt) < _breakDuration)
                throw RejectLocked();
        }
    }

    public void OnSuccess()
    {
        if (_state == CovetCircuitState.Closed && Volatile.Read(ref _consecutiveFailures) == 0)
            return;
        lock (_lock)
        {
            _consecutiveFailures = 0;
            _halfOpenAttemptInFlight = false;
            if (_state != CovetCircuitState.Closed)
            {
                _state = CovetCircuitState.Closed;
                CovetLog.CircuitClosed(logger, poolName);
            }
        }
    }

    public void OnFailure(Exception error)
    {
        if (!Enabled)
            return;
        lock (_lock)
        {
            _lastError = error;
            _consecutiveFailures++;
            _halfOpenAttemptInFlight = false;
            if (_state == CovetCircuitState.HalfOpen || (_state == CovetCircuitState.Closed && _consecutiveFailures >= _threshold))
                OpenLocked(error);
        }
    }

    /// <summary>Opens the circuit by hand.</summary>
    public void Trip()
    {
        lock (_lock)
        {
            if (_state != CovetCircuitState.Open)
                OpenLocked(_lastError);
        }
    }

    /// <summary>Closes the circuit by hand.</summary>
    public void Reset() => OnSuccess();

    private void OpenLocked(Exception? error)
    {
        _state = CovetCircuitState.Open;
        _openedAt = time.GetTimestamp();
        _openedAtUtc = time.GetUtcNow();
        CovetLog.CircuitOpened(logger, poolName, _consecutiveFailures, _openedAtUtc + _breakDuration, error);
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;
}
