using System.Data;
using System.Data.Common;
using System.Diagnostics;
using System.Transactions;
using Covet.Data.Diagnostics;
using Covet.Data.Health;
using Covet.Data.Providers;
using Covet.Data.Resilience;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Covet.Data.Pooling;

/// <summary>
/// One pool of physical connections for one (provider, connection string). It owns the pool's whole life: the idle set,
/// the waiters, slot accounting, validation on checkout, reset on return, and the background maintenance.
/// </summary>
/// <remarks>
/// <para>Design: one lock guards the idle stack, the waiter queue and the slot count (the MySqlConnector shape: simple
/// first). The lock is held only for a few field writes, never across I/O, so the fast path (pop an idle connection that
/// was used within the alive window) costs one uncontended lock and two timestamp reads.</para>
/// <para>Invariant, under <see cref="_lock"/>: <c>_total = idle + in use + being opened + being reset or validated</c>, and
/// <c>_total ≤ MaxPoolSize</c>. A slot taken to open a connection is given back if the open fails, before the error
/// reaches the caller, so a failed open never leaks a slot.</para>
/// <para>Fairness: waiters queue FIFO. A returned connection, or a freed slot, goes to the oldest live waiter before it
/// goes back to the idle stack, and a newcomer only reaches the idle stack when no one is waiting, so no caller can barge
/// ahead of one who has been waiting.</para>
/// </remarks>
internal sealed class CovetPool : IAsyncDisposable, IDisposable
{
    // --- Identity and settings: immutable after construction. ---
    private readonly DbProviderFactory _factory;
    private readonly string _physicalConnectionString;
    private readonly DbDataSource? _physicalSource;   // when given, physical connections come from it (its type mappings, plugins, callbacks)
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly long _aliveWindowTicks;    // in TimeProvider timestamp units
    private readonly long _traceSampleTicks;    // TraceSampleInterval in timestamp units
    private readonly long _acquireTimeoutTicks; // AcquireTimeout in timestamp units; long.MaxValue when infinite
    private readonly bool _leakDetection;
    private readonly bool _resetEnabled;
    private readonly bool _queueReset;                // the driver can send the reset with the next command (Npgsql)

    // --- The idle set, the waiters and the slot count: guarded by _lock. ---
    private readonly Lock _lock = new();
    private readonly PooledConnection[] _idle;       // LIFO: hot connections on top, the coldest at the bottom age out
    private int _idleCount;
    private readonly Queue<Waiter> _waiters = new(); // FIFO; may hold finished waiters (skipped on dequeue, dropped by the timer)
    private long _waiterTimerDue = long.MaxValue;     // when the waiter timer fires next
    private readonly Queue<PooledConnection> _pendingReset = new(); // returned dirty with no one waiting: reset in the background
    private readonly List<PooledConnection> _all = [];// every live slot, for the leak watch, health checks and shutdown
    private int _total;
    private int _generation;                          // bumped by Clear(); older connections are retired on return
    private bool _disposed;
    private readonly Dictionary<Transaction, PooledConnection> _enlisted = [];

    // --- Written with Interlocked outside the lock. ---
    private int _waiting;                             // live waiters (decremented by whoever completes the waiter)
    private int _nextId;
    private int _maintenanceRunning;                  // 0/1: the maintenance tick never overlaps itself
    private int _probing;                             // 0/1: at most one circuit probe in flight
    private int _warming;                             // slots being opened in the background (warm-up, growth)
    private int _backgroundHeld;                      // idle connections out for a health check: not demand either
    private long _lastHealthCheck;
    private long _nextSampledTrace = long.MinValue;   // Adaptive stack traces: at most one sampled checkout per TraceSampleInterval...
    private long _captureAllUntil = long.MinValue;    // ...and every checkout until then, after a suspected leak
    private int _suspectEpoch;                        // bumped when a connection dies under a borrower: every sibling verified before then is suspect
    private long _lastExhaustedLog = long.MinValue; // after a connection died under a borrower, validate every connection used before then

    private readonly ITimer _maintenanceTimer;
    private readonly ITimer _waiterTimer;
    private readonly DemandSizer _sizer;
    private readonly CircuitBreaker _breaker;

    public CovetPool(DbProviderFactory factory, string providerConnectionString, CovetPoolOptions options, CovetProviderFactory? owner, string originalConnectionString,
        DbDataSource? physicalSource = null)
    {
        OriginalConnectionString = originalConnectionString;
        _physicalSource = physicalSource;
        options.Validate();
        _factory = factory;
        Options = options;
        OwnerFactory = owner;
        Dialect = ProviderDialect.For(factory);
        ProviderConnectionString = providerConnectionString;
        _physicalConnectionString = Dialect.PhysicalConnectionString(factory, providerConnectionString, options);
        _time = options.TimeProvider;
        _logger = options.LoggerFactory?.CreateLogger("Covet.Data.Pool") ?? NullLogger.Instance;
        _aliveWindowTicks = ToTimestampTicks(options.AliveBypassWindow);
        _traceSampleTicks = ToTimestampTicks(TraceSampleInterval);
        _acquireTimeoutTicks = options.AcquireTimeout == Timeout.InfiniteTimeSpan ? long.MaxValue : ToTimestampTicks(options.AcquireTimeout);
        _leakDetection = options.LeakDetectionThreshold > TimeSpan.Zero;
        _resetEnabled = options.ResetSessionOnReturn && Dialect.CanReset(options);
        _queueReset = _resetEnabled && Dialect.CanQueueReset(_physicalConnectionString, options);
        _idle = new PooledConnection[options.MaxPoolSize];
        CommandTimeoutSeconds = Dialect.ConnectionStringSetsCommandTimeout(providerConnectionString)
            ? null
            : (int)Math.Ceiling(options.DefaultCommandTimeout.TotalSeconds);
        if (physicalSource is not null)
        {
            Template = physicalSource.CreateConnection();
        }
        else
        {
            Template = factory.CreateConnection() ?? throw new ArgumentException($"{factory.GetType().Name}.CreateConnection() returned null.", nameof(factory));
            Template.ConnectionString = providerConnectionString;
        }
        Name = options.PoolName ?? DescribeWithoutSecrets(Dialect, Template);
        _breaker = new CircuitBreaker(options.CircuitBreakerFailureThreshold, options.CircuitBreakerBreakDuration, _time, _logger, Name);
        _lastHealthCheck = _time.GetTimestamp();
        _sizer = new DemandSizer(options, _time);

        // Timers must not capture the creating caller's ExecutionContext (its AsyncLocals would live as long as the pool).
        using (ExecutionContext.SuppressFlow())
        {
            _maintenanceTimer = _time.CreateTimer(static s => ((CovetPool)s!).RunMaintenance(), this, options.MaintenanceInterval, options.MaintenanceInterval);
            _waiterTimer = _time.CreateTimer(static s => ((CovetPool)s!).ExpireWaiters(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        }
        CovetLog.PoolCreated(_logger, Name, options.MinPoolSize, options.MaxPoolSize, Dialect.Name);
        CovetPoolRegistry.Add(this);
        CovetMetrics.EnsureCreated();
        if (options.MinPoolSize > 0)
            StartWarmUp();
    }

    /// <summary>Adaptive stack traces: at most one sampled checkout per interval (outside a suspected-leak period).</summary>
    internal static readonly TimeSpan TraceSampleInterval = TimeSpan.FromMilliseconds(100);

    public string Name { get; }
    public CovetPoolOptions Options { get; }
    public ProviderDialect Dialect { get; }
    public DbProviderFactory InnerFactory => _factory;
    public CovetProviderFactory? OwnerFactory { get; }
    public string ProviderConnectionString { get; }

    /// <summary>The string physical connections are opened with (the driver's pooling off, its connect timeout capped).</summary>
    internal string PhysicalConnectionString => _physicalConnectionString;

    /// <summary>The connection string as the user gave it (Covet keywords included).</summary>
    public string OriginalConnectionString { get; }
    internal PoolCounters Counters { get; } = new();
    internal CircuitBreaker Breaker => _breaker;

    /// <summary>An unopened provider connection with the user's connection string, for metadata while a logical connection is closed.</summary>
    public DbConnection Template { get; }

    /// <summary>Command timeout to give commands created through Covet; null when the provider connection string sets its own.</summary>
    public int? CommandTimeoutSeconds { get; }

    public bool IsDisposed => Volatile.Read(ref _disposed);

    // =====================================================================================================
    // Checkout
    // =====================================================================================================

    /// <summary>Borrows a connection. The returned lease is the caller's ownership token for <see cref="Return"/>.</summary>
    /// <param name="borrower">The logical connection that will hold the lease (weakly referenced: see <see cref="PooledConnection.Borrower"/>).</param>
    /// <param name="async">Whether I/O is asynchronous.</param>
    /// <param name="cancellationToken">The caller's token.</param>
    public ValueTask<(PooledConnection Connection, long Lease)> AcquireAsync(object borrower, bool async, CancellationToken cancellationToken)
    {
        var start = _time.GetTimestamp();
        // Where the caller is, taken before the first await: after it, the code may run on a thread-pool continuation
        // whose stack no longer shows the user's frames.
        var site = _leakDetection ? CaptureSite(start) : default;
        return AcquireCoreAsync(borrower, async, cancellationToken, start, site, handedOver: false, handed: null);
    }

    /// <param name="borrower">See <see cref="AcquireAsync"/>.</param>
    /// <param name="async">Whether I/O is asynchronous.</param>
    /// <param name="cancellationToken">The caller's token.</param>
    /// <param name="start">When the acquire began: its deadline is measured from here.</param>
    /// <param name="site">Where the caller asked (taken on the caller's thread).</param>
    /// <param name="handedOver">A queued waiter was served: <paramref name="handed"/> is its connection to validate, or null for a
    /// reserved slot to open a connection in; the first attempt starts from it instead of the idle stack.</param>
    /// <param name="handed">See <paramref name="handedOver"/>.</param>
    private async ValueTask<(PooledConnection Connection, long Lease)> AcquireCoreAsync(object borrower, bool async, CancellationToken cancellationToken,
        long start, CheckoutSite site, bool handedOver, PooledConnection? handed)
    {
        Transaction? transaction = null;
        if (!handedOver)
        {
            if (_breaker.State == CovetCircuitState.Open)
                _breaker.ThrowIfRejecting(); // fail fast while the database is down, even when idle (likely dead) connections remain
            transaction = Transaction.Current;
            if (transaction is not null && TryTakeEnlisted(transaction) is { } enlisted)
                return (enlisted, CheckOut(enlisted, borrower, start, site));
        }

        Activity? activity = null; // only for checkouts that wait or open a connection: the fast path stays span-free
        try
        {
            for (var attempt = 0; ; attempt++)
            {
                // Each dead idle connection costs a ping; together they must not outlast the acquire timeout.
                if (attempt > 0 && Remaining(start) <= TimeSpan.Zero)
                    throw ExhaustedException("validating idle connections used up the acquire timeout");
                PooledConnection? connection = null;
                Waiter? waiter = null;
                var create = false;
                var fromHandover = attempt == 0 && handedOver;
                if (fromHandover)
                {
                    connection = handed;
                    create = handed is null;
                }
                else
                {
                    lock (_lock)
                    {
                        ObjectDisposedException.ThrowIf(_disposed, this);
                        if (_idleCount > 0)
                        {
                            connection = _idle[--_idleCount];
                            _idle[_idleCount] = null!;
                            connection.State = SlotState.InUse;
                        }
                        else if (_pendingReset.TryDequeue(out connection))
                        {
                            // No clean connection: reset one that waits for a background reset ourselves (one round trip) rather
                            // than open a new physical connection or wait.
                            connection.State = SlotState.InUse;
                        }
                        else if (_total < Options.MaxPoolSize)
                        {
                            _total++;
                            create = true;
                        }
                        else
                        {
                            waiter = EnqueueWaiterLocked(start, null, default);
                        }
                    }
                }

                if ((waiter is not null || create) && activity is null && CovetMetrics.ActivitySource.HasListeners())
                {
                    activity = CovetMetrics.ActivitySource.StartActivity("covet.acquire", ActivityKind.Client);
                    activity?.SetTag(CovetMetrics.PoolNameTag, Name);
                    activity?.SetTag("covet.acquire.path", waiter is not null ? "wait" : "create");
                }

                if (waiter is not null)
                {
                    BeginWait(waiter, cancellationToken);
                    if (async)
                        await waiter.Task.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                    else
                        WaitBlocking(waiter);
                    connection = EndWait(waiter, cancellationToken);
                    create = connection is null; // a freed slot was handed to us: we open the connection
                }

                if (create)
                {
                    connection = await CreateAsync(async, start, cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    bool usable;
                    try
                    {
                        // Straight from the idle stack on the first attempt, the acquire's start is "now" to within nanoseconds.
                        var now = attempt == 0 && waiter is null && !fromHandover ? start : _time.GetTimestamp();
                        usable = await PrepareForBorrowerAsync(connection!, start, now, async, cancellationToken).ConfigureAwait(false);
                    }
                    catch
                    {
                        // Cancelled mid-ping or mid-reset: its state is unknown, so it is closed rather than re-pooled.
                        Destroy(connection!, "validation interrupted");
                        throw;
                    }
                    if (!usable)
                        continue; // it was dead or stale and has been destroyed; try again within the same deadline
                }

                if (transaction is not null)
                    Enlist(connection!, transaction);
                return (connection!, CheckOut(connection!, borrower, start, site));
            }
        }
        catch (Exception e) when (activity is not null)
        {
            activity.SetStatus(ActivityStatusCode.Error, e.Message);
            throw;
        }
        finally
        {
            activity?.Dispose();
        }
    }

    /// <summary>
    /// The fast path of a checkout: the top idle connection when it needs nothing before use (current generation, not
    /// expired, clean, used within the alive window and not suspect), no ambient transaction and the breaker closed. It
    /// runs synchronously with one clock read and no async state machine; false means "take <see cref="AcquireAsync"/>",
    /// which handles every other case (and nothing was taken).
    /// </summary>
    public bool TryAcquireReady(object borrower, out PooledConnection connection, out long lease)
    {
        connection = null!;
        lease = 0;
        if (_breaker.State == CovetCircuitState.Open || Transaction.Current is not null)
            return false;
        var now = _time.GetTimestamp();
        lock (_lock)
        {
            if (_disposed || TakeReadyIdleLocked(now) is not { } ready)
                return false;
            connection = ready;
        }
        // Taken on the caller's own thread, before any await, so the trace shows the caller.
        lease = CheckOut(connection, borrower, now, _leakDetection ? CaptureSite(now) : default, now);
        return true;
    }

    /// <summary>
    /// <see cref="TryAcquireReady"/> for a plain async open (no StateChange handler), which may also wait without an async
    /// state machine: when the pool is exhausted (nothing idle, nothing being reset, every slot taken) the caller is queued
    /// as a bound <see cref="Waiter"/> and its task, which completes once <paramref name="borrower"/> is open, is returned.
    /// </summary>
    /// <returns>A completed task: <paramref name="borrower"/> is open. A waiter's task. Null: nothing was taken or queued,
    /// use <see cref="AcquireAsync"/> (it opens, validates, enlists, traces and reports everything else).</returns>
    public Task? TryAcquireReadyOrWait(CovetDbConnection borrower, CancellationToken cancellationToken)
    {
        if (_breaker.State == CovetCircuitState.Open || Transaction.Current is not null)
            return null;
        var now = _time.GetTimestamp();
        // Where the caller is, taken outside the lock (a sampled trace is a stack walk), and only when it may wait: with an
        // idle connection in sight the checkout takes it after the lock.
        // (Racy reads: a wrong guess only means the slow path captures the site again.)
        var mayWait = Volatile.Read(ref _idleCount) == 0 && Volatile.Read(ref _total) >= Options.MaxPoolSize;
        var site = mayWait && _leakDetection ? CaptureSite(now) : default;
        PooledConnection? ready = null;
        Waiter? waiter = null;
        lock (_lock)
        {
            if (_disposed)
                return null;
            if (_idleCount > 0)
            {
                if ((ready = TakeReadyIdleLocked(now)) is null)
                    return null;
            }
            else if (mayWait && _pendingReset.Count == 0 && _total >= Options.MaxPoolSize && !CovetMetrics.ActivitySource.HasListeners())
            {
                waiter = EnqueueWaiterLocked(now, borrower, site);
            }
            else
            {
                return null;
            }
        }
        if (ready is not null)
        {
            if (!mayWait && _leakDetection)
                site = CaptureSite(now);
            borrower.Attach(ready, CheckOut(ready, borrower, now, site, now));
            return Task.CompletedTask;
        }
        // Registered after the waiter is queued, so a returner may have served it already: then the registration is
        // dropped here (the fence orders our write of the registration before our read of the claim).
        BeginWait(waiter!, cancellationToken);
        Interlocked.MemoryBarrier();
        if (waiter!.IsClaimed)
            waiter.Cancellation.Unregister();
        return waiter.Task;
    }

    /// <summary>
    /// The top idle connection, taken, when it may be given out as it is; null when none is idle or the top one needs a
    /// ping, a reset or retiring (the slow path's work: nothing was taken). Under <see cref="_lock"/>.
    /// </summary>
    private PooledConnection? TakeReadyIdleLocked(long now)
    {
        if (_idleCount == 0 || !IsReady(_idle[_idleCount - 1], now))
            return null;
        var top = _idle[--_idleCount];
        _idle[_idleCount] = null!;
        top.State = SlotState.InUse;
        return top;
    }

    /// <summary>Whether a connection taken from the idle stack or handed over may be given out as it is, with no I/O.</summary>
    private bool IsReady(PooledConnection connection, long now) =>
        !connection.Broken && !connection.NeedsReset && connection.Generation == Volatile.Read(ref _generation) && !connection.HasExpired(now) &&
        (!Options.PrePing || (now - connection.LastUsedAt <= _aliveWindowTicks && connection.VerifiedEpoch == Volatile.Read(ref _suspectEpoch)));

    /// <summary>Where and on which thread a checkout was asked for (leak reports).</summary>
    /// <remarks>The thread itself rather than its id and name: a queued waiter keeps this, and it is one field smaller.</remarks>
    private readonly record struct CheckoutSite(StackTrace? Trace, Thread? Thread);

    private CheckoutSite CaptureSite(long now)
    {
        var thread = Thread.CurrentThread;
        return new CheckoutSite(ShouldCaptureTrace(now) ? CheckoutStackTrace.Capture() : null, thread);
    }

    /// <summary>Records the checkout and hands out a new lease. Only the new borrower runs this.</summary>
    private long CheckOut(PooledConnection connection, object borrower, long start, CheckoutSite site, long now = 0)
    {
        // Before the lease moves: a leak watcher that reads the new lease then finds this borrower, never the previous one.
        connection.Borrower.SetTarget(borrower);
        if (now == 0)
            now = _time.GetTimestamp();
        connection.CheckedOutAt = now;
        connection.CheckoutTrace = site.Trace;
        connection.CheckoutThreadId = site.Thread?.ManagedThreadId ?? 0;
        connection.CheckoutThreadName = site.Thread?.Name;
        connection.LeakReported = 0;
        // A plain (release) write is enough: the lease is even while nobody holds the slot, and every competing writer (a
        // stale Close, the leak watch) compare-and-swaps from an odd value it read, so none can succeed until this write.
        var lease = connection.Lease + 1;
        Volatile.Write(ref connection.Lease, lease);
        connection.Borrowed = true;
        var waited = _time.GetElapsedTime(start, now);
        Counters.AcquireTime.Record(waited);
        if (CovetMetrics.WaitTime.Enabled)
            CovetMetrics.WaitTime.Record(waited.TotalSeconds, CovetMetrics.PoolTag(this));
        return lease;
    }

    /// <summary>
    /// Whether this checkout pays for a stack walk (see <see cref="CovetPoolOptions.LeakStackTraces"/>). Adaptive samples by
    /// time, not by count: at most one walk per <see cref="TraceSampleInterval"/> bounds the cost on a busy pool (a few
    /// µs ten times a second) while a quiet pool, where most leaks are easy to miss, has nearly every checkout traced.
    /// </summary>
    private bool ShouldCaptureTrace(long now)
    {
        switch (Options.LeakStackTraces)
        {
            case CovetLeakStackTraces.Always:
                return true;
            case CovetLeakStackTraces.Never:
                return false;
        }
        if (now < Volatile.Read(ref _captureAllUntil))
            return true;
        if (now < Volatile.Read(ref _nextSampledTrace))
            return false;
        // Racy on purpose: two callers may both sample at the turn of an interval; it only costs one extra trace.
        Volatile.Write(ref _nextSampledTrace, now + _traceSampleTicks);
        return true;
    }

    /// <summary>Validates a connection taken from the idle stack or handed over by a returner. False: it was destroyed.</summary>
    /// <param name="connection">The connection to validate.</param>
    /// <param name="acquireStart">When the acquire began (its deadline bounds the ping).</param>
    /// <param name="now">A timestamp taken just now (the fast path reuses the acquire's own: one clock read less).</param>
    /// <param name="async">Whether I/O is asynchronous.</param>
    /// <param name="cancellationToken">The caller's token.</param>
    private async ValueTask<bool> PrepareForBorrowerAsync(PooledConnection connection, long acquireStart, long now, bool async, CancellationToken cancellationToken)
    {
        if (connection.Broken || connection.Generation != Volatile.Read(ref _generation) || connection.HasExpired(now))
        {
            Destroy(connection, connection.Broken ? "broken" : connection.HasExpired(now) ? "max lifetime reached" : "pool cleared");
            return false;
        }
        if (connection.NeedsReset)
        {
            // Handed over by a returner while we waited: we reset it ourselves, on our own thread, so a waiter never
            // depends on a thread-pool thread being free (sync callers may be occupying all of them).
            if (!await TryResetAsync(connection, async, cancellationToken).ConfigureAwait(false))
                return false;
            return true;
        }
        // The alive window skips the ping for hot connections, except right after a connection was found dead under a
        // borrower: then its siblings are suspect too (a server restart or a mass kill), so each is tested once.
        var epoch = Volatile.Read(ref _suspectEpoch);
        if (Options.PrePing && (now - connection.LastUsedAt > _aliveWindowTicks || connection.VerifiedEpoch != epoch))
        {
            var alive = await Dialect.PingAsync(connection.Physical, Options, Min(Options.ValidationTimeout, Remaining(acquireStart)), async, cancellationToken).ConfigureAwait(false);
            if (!alive)
            {
                Interlocked.Increment(ref Counters.PrePingFailures);
                CovetLog.PrePingFailed(_logger, Name, connection.Id);
                Destroy(connection, "pre-ping failed");
                return false;
            }
            connection.LastUsedAt = _time.GetTimestamp();
            connection.VerifiedEpoch = epoch;
        }
        return true;
    }

    /// <summary>Opens a physical connection into a slot already counted in <see cref="_total"/>; gives the slot back on failure.</summary>
    private async ValueTask<PooledConnection> CreateAsync(bool async, long acquireStart, CancellationToken cancellationToken)
    {
        DbConnection? physical = null;
        var heldHalfOpenTrial = false;
        try
        {
            heldHalfOpenTrial = _breaker.ThrowIfOpen();
            var started = _time.GetTimestamp();
            // The driver must not enlist on open: Covet enlists at checkout, explicitly (a data source's connections keep
            // the driver's Enlist=true, which no connection string of ours can turn off).
            using var noAmbientTransaction = Transaction.Current is null ? null : new TransactionScope(TransactionScopeOption.Suppress, TransactionScopeAsyncFlowOption.Enabled);
            physical = await NewPhysicalAsync(cancellationToken).ConfigureAwait(false);
            if (async)
            {
                // The caller's acquire deadline bounds the open too, so a black-holed server cannot hold it past its timeout.
                var remaining = Remaining(acquireStart);
                using var deadline = new Deadline(remaining, _time, cancellationToken);
                try
                {
                    // Bounded here too: Npgsql's open ignores the token once TCP is up and waits out its own timeout.
                    await Deadline.WithinAsync(physical.OpenAsync(deadline.Token), physical, remaining, _time, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when ((e is TimeoutException || deadline.TimedOut || Remaining(acquireStart) <= DeadlineTolerance) && !cancellationToken.IsCancellationRequested)
                {
                    throw ExhaustedException("opening a new physical connection did not finish within the acquire timeout", e);
                }
            }
            else
            {
                try
                {
                    physical.Open(); // bounded by the driver's connect timeout, which the dialect capped at the acquire timeout
                }
                catch (Exception e) when (Remaining(acquireStart) <= DeadlineTolerance)
                {
                    throw ExhaustedException("opening a new physical connection did not finish within the acquire timeout", e);
                }
            }
            return Adopt(physical, started);
        }
        catch (Exception e)
        {
            if (physical is not null)
                Deadline.DisposeSafely(physical);
            if (e is not CovetCircuitOpenException && !(e is OperationCanceledException && cancellationToken.IsCancellationRequested))
            {
                // Cannot connect, authentication, shutdown, or a connect that never answered: all count for the breaker.
                Interlocked.Increment(ref Counters.ConnectionFailures);
                CovetLog.ConnectionFailed(_logger, Name, e);
                _breaker.OnFailure(e);
            }
            else if (heldHalfOpenTrial)
            {
                _breaker.OnFailure(e);
            }
            ReleaseSlot();
            throw;
        }
    }

    /// <summary>What is left of an acquire that started at <paramref name="start"/> (infinite when AcquireTimeout is).</summary>
    private TimeSpan Remaining(long start) =>
        Options.AcquireTimeout == Timeout.InfiniteTimeSpan ? Timeout.InfiniteTimeSpan : Options.AcquireTimeout - _time.GetElapsedTime(start);

    /// <summary>
    /// The driver's own connect timeout is capped at the acquire timeout (whole seconds), so the two can fire together:
    /// a connect failing this close to the deadline is reported as the acquire timing out (the driver's error inside).
    /// </summary>
    private static readonly TimeSpan DeadlineTolerance = TimeSpan.FromMilliseconds(50);

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a == Timeout.InfiniteTimeSpan ? b : b == Timeout.InfiniteTimeSpan ? a : a < b ? a : b;

    /// <summary>Turns a just-opened physical connection into a slot of this pool (its slot was already counted).</summary>
    private PooledConnection Adopt(DbConnection physical, long started)
    {
        var now = _time.GetTimestamp();
        var elapsed = _time.GetElapsedTime(started, now);
        RecordCreateTime(elapsed);
        var connection = new PooledConnection(this, physical, now, ExpiryFrom(now), Interlocked.Increment(ref _nextId))
        {
            VerifiedEpoch = Volatile.Read(ref _suspectEpoch),
        };
        lock (_lock)
        {
            connection.Generation = _generation;
            connection.State = SlotState.InUse;
            _all.Add(connection);
        }
        Interlocked.Increment(ref Counters.ConnectionsCreated);
        _breaker.OnSuccess();
        CovetLog.ConnectionCreated(_logger, Name, connection.Id, elapsed.TotalMilliseconds);
        return connection;
    }

    private void RecordCreateTime(TimeSpan elapsed)
    {
        Counters.CreateTime.Record(elapsed);
        if (CovetMetrics.CreateTime.Enabled)
            CovetMetrics.CreateTime.Record(elapsed.TotalSeconds, CovetMetrics.PoolTag(this));
    }

    /// <summary>A new, unopened physical connection: from the physical data source when one was given, else from the factory.</summary>
    private async ValueTask<DbConnection> NewPhysicalAsync(CancellationToken cancellationToken)
    {
        if (_physicalSource is not null)
            return _physicalSource.CreateConnection();
        var physical = _factory.CreateConnection()!;
        if (Options.PasswordProvider is not { } provider)
        {
            physical.ConnectionString = _physicalConnectionString;
            return physical;
        }
        var password = await provider(cancellationToken).ConfigureAwait(false);
        var builder = _factory.CreateConnectionStringBuilder() ?? new DbConnectionStringBuilder();
        builder.ConnectionString = _physicalConnectionString;
        builder["Password"] = password;
        physical.ConnectionString = builder.ConnectionString;
        return physical;
    }

    private long ExpiryFrom(long now)
    {
        if (Options.MaxLifetime <= TimeSpan.Zero || Options.MaxLifetime == Timeout.InfiniteTimeSpan)
            return long.MaxValue;
        // Up to 2.5 % earlier, at random, so connections made together do not all expire together (HikariCP does the same).
        var spread = Options.MaxLifetime * (Random.Shared.NextDouble() * 0.025);
        return now + ToTimestampTicks(Options.MaxLifetime - spread);
    }

    // =====================================================================================================
    // Waiting
    // =====================================================================================================

    /// <summary>
    /// A caller waiting for a connection. What it is handed is a connection, or null meaning "a slot was freed and reserved
    /// for you: open a new connection"; it faults when its deadline passes and is cancelled by the caller's token or the
    /// pool's disposal. Whoever claims it decrements <see cref="_waiting"/>. Continuations run
    /// asynchronously so a returner never runs a waiter's code inline; a sync caller blocked in <see cref="Task.Wait(TimeSpan)"/>
    /// is woken directly by the returner, without needing a thread-pool thread.
    /// </summary>
    /// <remarks>
    /// Two kinds. A waiter that <see cref="AcquireCoreAsync"/> awaits itself (sync callers, and async callers with a
    /// StateChange handler, an ambient transaction or tracing on) completes with the connection or reserved slot and the
    /// acquire carries on. A <em>bound</em> waiter (<see cref="Borrower"/> set, see <see cref="TryAcquireReadyOrWait"/>) is
    /// what a plain async <c>OpenAsync</c> returns: it completes only once its logical connection is open, so a waiting
    /// caller costs this object and its task, not a chain of async state machines (memory per waiter matters with ten
    /// thousand of them). Its outcome is decided once, by whoever wins <see cref="Claim"/>: a returner (who checks the
    /// connection out to it, or when the connection needs a ping, a reset or opening, queues that work to the thread pool,
    /// where an async caller's continuation would run anyway), the timer, the caller's token or the pool's disposal.
    /// </remarks>
    private sealed class Waiter(CovetPool pool, long start, CovetDbConnection? borrower, CheckoutSite site)
        // A classic waiter's continuation must never run on the returner's thread. A bound waiter's task is completed only
        // from its own thread-pool work item (see Post), so its continuation may run inline there.
        : TaskCompletionSource(borrower is null ? TaskCreationOptions.RunContinuationsAsynchronously : TaskCreationOptions.None), IThreadPoolWorkItem
    {
        private const int Waiting = 0, Claimed = 1, Opened = 2, NeedsWork = 3, Failed = 4;
        private int _state;                   // Waiting until the outcome is claimed (see Claim); then what Execute does
        // What the claimer decided: the connection handed over, or null for a freed slot to open one in (a classic waiter
        // reads it after its task completed; a bound one in Execute), or a bound waiter's exception. Written before the
        // task completes or the work item is queued, so the reader sees it.
        private object? _outcome;

        public readonly long Start = start;
        public readonly CovetDbConnection? Borrower = borrower;
        public readonly CheckoutSite Site = site;
        public CancellationTokenRegistration Cancellation;

        public long Deadline => pool.DeadlineOf(Start);

        /// <summary>Decided: served, expired, cancelled or failed (its task may complete a moment later).</summary>
        public bool IsClaimed => Volatile.Read(ref _state) != Waiting;

        private bool Claim()
        {
            if (Interlocked.CompareExchange(ref _state, Claimed, Waiting) != Waiting)
                return false;
            Interlocked.Decrement(ref pool._waiting);
            return true;
        }

        public bool TryExpire()
        {
            if (!Claim())
                return false;
            if (Borrower is null)
                TrySetException(WaitTimedOut); // the acquire builds the real exception
            else
                Post(Failed, pool.ExhaustedException(null));
            return true;
        }

        public bool TryCancel()
        {
            if (!Claim())
                return false;
            if (Borrower is null)
                TrySetCanceled();
            else
                Post(Failed, new OperationCanceledException("Opening the connection was cancelled.", Cancellation.Token));
            return true;
        }

        public bool TryFailDisposed()
        {
            if (!Claim())
                return false;
            if (Borrower is null)
                TrySetCanceled(); // the acquire tells disposal from cancellation
            else
                Post(Failed, new ObjectDisposedException(nameof(CovetPool), $"Pool '{pool.Name}' was disposed while waiting for a connection."));
            return true;
        }

        /// <summary>A returner hands over a connection, or a freed slot (null) to open one in.</summary>
        public bool TryHand(PooledConnection? connection)
        {
            if (!Claim())
                return false;
            if (Borrower is null)
            {
                _outcome = connection;
                TrySetResult();
                return true;
            }
            // A ready connection is checked out to the borrower right here; one that needs I/O first (or a slot) is
            // finished by the work item.
            Post(connection is not null && pool.TryCheckOutToWaiter(this, connection) ? Opened : NeedsWork, connection);
            return true;
        }

        /// <summary>
        /// A bound waiter's outcome is applied by a work item on the thread pool's global (first-in, first-out) queue, never
        /// on the thread that decided it: the caller's continuation then runs inline in that work item, and handovers wait
        /// their turn behind I/O completions instead of jumping ahead of them on the returner's local queue (which made
        /// connections be held longer under load).
        /// </summary>
        private void Post(int state, object? outcome)
        {
            Cancellation.Unregister(); // never blocks: a callback already running finds the waiter claimed
            _outcome = outcome;
            Volatile.Write(ref _state, state);
            ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
        }

        void IThreadPoolWorkItem.Execute()
        {
            switch (_state)
            {
                case Opened:
                    TrySetResult();
                    break;
                case NeedsWork:
                    _ = pool.FinishHandOverAsync(this, (PooledConnection?)_outcome);
                    break;
                default:
                    Fail((Exception)_outcome!);
                    break;
            }
        }

        /// <summary>Bound waiter, on a thread-pool thread: the borrower is open.</summary>
        public void Open(PooledConnection connection, long lease)
        {
            Borrower!.Attach(connection, lease);
            TrySetResult();
        }

        /// <summary>Classic waiter, once its task completed successfully: the connection handed over, or null for a slot.</summary>
        public PooledConnection? Handed => (PooledConnection?)_outcome;

        /// <summary>Bound waiter, on a thread-pool thread: the open failed.</summary>
        public void Fail(Exception exception)
        {
            if (exception is OperationCanceledException && Cancellation.Token.IsCancellationRequested)
                TrySetCanceled(Cancellation.Token);
            else
                TrySetException(exception);
        }
    }

    /// <summary>When an acquire that began at <paramref name="start"/> times out (long.MaxValue: never).</summary>
    private long DeadlineOf(long start) => _acquireTimeoutTicks == long.MaxValue ? long.MaxValue : start + _acquireTimeoutTicks;

    /// <summary>
    /// A bound waiter was handed a connection: when it needs nothing before use, check it out to the waiter's borrower
    /// right here on the returner's thread (its task completes from the work item). False: it needs a ping or a reset first.
    /// </summary>
    private bool TryCheckOutToWaiter(Waiter waiter, PooledConnection connection)
    {
        var now = _time.GetTimestamp();
        if (!IsReady(connection, now))
            return false;
        waiter.Borrower!.Attach(connection, CheckOut(connection, waiter.Borrower!, waiter.Start, waiter.Site, now));
        return true;
    }

    /// <summary>A bound waiter's connection needs a ping, a reset or opening: the rest of an acquire, then the borrower is open.</summary>
    private async Task FinishHandOverAsync(Waiter waiter, PooledConnection? handed)
    {
        try
        {
            var (connection, lease) = await AcquireCoreAsync(waiter.Borrower!, async: true, waiter.Cancellation.Token, waiter.Start, waiter.Site,
                handedOver: true, handed).ConfigureAwait(false);
            waiter.Open(connection, lease);
        }
        catch (Exception e)
        {
            waiter.Fail(e);
        }
    }

    private static readonly TimeSpan SyncWaitSlice = TimeSpan.FromMilliseconds(50);

    /// <summary>Marks a waiter whose deadline passed; never thrown (the waiter builds the real exception).</summary>
    private static readonly TimeoutException WaitTimedOut = new("Covet acquire deadline passed.");

    /// <summary>
    /// Queues a waiter with its deadline. One timer per pool (not one per waiter) expires waiters: it is due at the earliest
    /// deadline in the queue, so ten thousand waiters cost one timer. Call under <see cref="_lock"/>.
    /// </summary>
    private Waiter EnqueueWaiterLocked(long start, CovetDbConnection? borrower, CheckoutSite site)
    {
        var waiter = new Waiter(this, start, borrower, site);
        var deadline = waiter.Deadline;
        _waiters.Enqueue(waiter);
        Interlocked.Increment(ref _waiting);
        if (deadline < _waiterTimerDue)
            ScheduleWaiterTimerLocked(deadline, _time.GetTimestamp());
        return waiter;
    }

    private void ScheduleWaiterTimerLocked(long due, long now)
    {
        _waiterTimerDue = due;
        if (due != long.MaxValue)
            _waiterTimer.Change(_time.GetElapsedTime(now, Math.Max(now, due)), Timeout.InfiniteTimeSpan);
    }

    /// <summary>The waiter timer: expires every waiter past its deadline, drops finished ones from the queue, re-arms for the next deadline.</summary>
    private void ExpireWaiters()
    {
        List<Waiter>? expired = null;
        lock (_lock)
        {
            var now = _time.GetTimestamp();
            var next = long.MaxValue;
            for (var i = _waiters.Count; i > 0; i--)
            {
                var waiter = _waiters.Dequeue();
                if (waiter.IsClaimed)
                    continue; // served elsewhere, cancelled or expired: drop it so the queue never grows with the dead
                if (waiter.Deadline <= now)
                {
                    (expired ??= []).Add(waiter);
                    continue;
                }
                next = Math.Min(next, waiter.Deadline);
                _waiters.Enqueue(waiter); // order is kept: every live waiter goes round once
            }
            ScheduleWaiterTimerLocked(next, now);
        }
        if (expired is not null)
            foreach (var waiter in expired)
                waiter.TryExpire();
    }

    // Waiting is split into three plain methods around one await in AcquireAsync, so a waiting caller costs one async
    // state machine, not two (memory per waiter matters with thousands of them).

    private static void BeginWait(Waiter waiter, CancellationToken cancellationToken)
    {
        if (cancellationToken.CanBeCanceled)
            waiter.Cancellation = cancellationToken.UnsafeRegister(static w => ((Waiter)w!).TryCancel(), waiter);
    }

    /// <summary>
    /// A sync caller's wait. The pool timer expires waiters, but it needs a thread-pool thread, which sync callers may have
    /// tied up; so this waits in slices and checks the deadline on the pool's clock itself.
    /// </summary>
    private void WaitBlocking(Waiter waiter)
    {
        try
        {
            while (!waiter.Task.Wait(SyncWaitSlice))
            {
                if (_time.GetTimestamp() >= waiter.Deadline)
                {
                    waiter.TryExpire();
                    break;
                }
            }
        }
        catch (AggregateException)
        {
            // Faulted or cancelled: EndWait tells which.
        }
    }

    /// <summary>The outcome of a finished wait: a connection or a reserved slot (null), or the right exception.</summary>
    private PooledConnection? EndWait(Waiter waiter, CancellationToken cancellationToken)
    {
        waiter.Cancellation.Dispose();
        var task = waiter.Task;
        if (task.IsCompletedSuccessfully)
            return waiter.Handed; // ours now: the caller uses it or gives it back
        if (task.IsFaulted)
            throw ExhaustedException(null);
        if (cancellationToken.IsCancellationRequested)
            throw new OperationCanceledException("Opening the connection was cancelled.", cancellationToken);
        throw new ObjectDisposedException(GetType().Name, $"Pool '{Name}' was disposed while waiting for a connection.");
    }

    /// <summary>The oldest waiter that has not given up, or null. Call under <see cref="_lock"/>.</summary>
    private Waiter? DequeueLiveWaiterLocked()
    {
        while (_waiters.TryDequeue(out var waiter))
        {
            if (!waiter.IsClaimed)
                return waiter;
        }
        return null;
    }

    /// <summary>Frees a slot: a waiter gets it (to open a connection), otherwise the count goes down.</summary>
    private void ReleaseSlot()
    {
        while (true)
        {
            Waiter? waiter;
            lock (_lock)
            {
                waiter = _disposed ? null : DequeueLiveWaiterLocked();
                if (waiter is null)
                {
                    _total--;
                    return;
                }
            }
            if (waiter.TryHand(null))
                return;
        }
    }

    /// <summary>
    /// Makes a live connection available: to the oldest waiter (who resets it first if it is dirty), else onto the idle
    /// stack when clean, or into the background-reset queue when dirty.
    /// </summary>
    /// <param name="connection">The connection.</param>
    /// <param name="now">A timestamp taken just now, if the caller has one (one clock read less on the return path).</param>
    private void MakeAvailable(PooledConnection connection, long now = 0)
    {
        while (true)
        {
            Waiter? waiter = null;
            bool stale = false, queueReset = false;
            lock (_lock)
            {
                if (_disposed || connection.Generation != _generation)
                {
                    stale = true;
                }
                else if ((waiter = DequeueLiveWaiterLocked()) is not null)
                {
                    connection.State = SlotState.InUse;
                }
                else if (connection.NeedsReset)
                {
                    // No one is waiting: reset in the background, off every caller's path, then come back here.
                    connection.State = SlotState.Resetting;
                    _pendingReset.Enqueue(connection);
                    queueReset = true;
                }
                else
                {
                    connection.State = SlotState.Idle;
                    connection.IdleSince = now != 0 ? now : _time.GetTimestamp();
                    _idle[_idleCount++] = connection;
                    return;
                }
            }
            if (stale)
            {
                Destroy(connection, IsDisposed ? "pool disposed" : "pool cleared");
                return;
            }
            if (queueReset)
            {
                // Queued outside the lock: the lock covers field writes only.
                ThreadPool.UnsafeQueueUserWorkItem(static pool => _ = pool.ResetInBackgroundAsync(), this, preferLocal: false);
                return;
            }
            if (waiter!.TryHand(connection))
                return;
        }
    }

    // =====================================================================================================
    // Return
    // =====================================================================================================

    /// <summary>
    /// Gives a borrowed connection back. Does nothing if the lease is stale (the slot was reclaimed). Never performs a
    /// network round trip on the caller's thread: a needed reset runs in the background or is done by the next waiter.
    /// </summary>
    /// <param name="connection">The borrowed slot.</param>
    /// <param name="lease">The lease the borrower got at checkout.</param>
    /// <param name="pendingRollback">The borrower's still-open transaction, rolled back before anyone else gets the connection.</param>
    public void Return(PooledConnection connection, long lease, DbTransaction? pendingRollback)
    {
        if (Interlocked.CompareExchange(ref connection.Lease, lease + 1, lease) != lease)
            return; // reclaimed or recovered by the pool meanwhile; it is no longer ours
        var now = _time.GetTimestamp();
        var held = _time.GetElapsedTime(connection.CheckedOutAt, now);
        Counters.UseTime.Record(held);
        if (CovetMetrics.UseTime.Enabled)
            CovetMetrics.UseTime.Record(held.TotalSeconds, CovetMetrics.PoolTag(this));
        if (connection.LeakReported != 0)
            CovetLog.LeakReturned(_logger, Name, connection.Id, held.TotalSeconds);
        connection.CheckoutTrace = null;
        connection.PendingRollback = pendingRollback;
        if (pendingRollback is not null)
            connection.NeedsReset = true;

        // EnlistedIn is set only by the borrower (us), and cleared under the lock by the transaction's completion, which
        // also reads Borrowed under the lock: so exactly one of the two hands the connection back.
        if (connection.EnlistedIn is null)
        {
            connection.Borrowed = false;
        }
        else
        {
            lock (_lock)
            {
                connection.Borrowed = false;
                if (connection.EnlistedIn is not null)
                    return; // parked until the transaction completes (OnTransactionCompleted)
            }
        }
        ReturnToPool(connection, now);
    }

    /// <summary>A borrower's connection died: its siblings may be dead too, so each is validated before its next handout.</summary>
    public void OnConnectionBroken()
    {
        Interlocked.Increment(ref _suspectEpoch);
    }

    private void ReturnToPool(PooledConnection connection, long now)
    {
        if (connection.Broken || connection.Physical.State != ConnectionState.Open)
        {
            OnConnectionBroken();
            Destroy(connection, "broken");
            return;
        }
        if (!Dialect.IsReusable(connection.Physical))
        {
            // A command still running or a protocol out of sync: no reset can make it safe for the next borrower.
            Destroy(connection, "returned busy or out of sync");
            return;
        }
        if (!_resetEnabled && Dialect.InTransaction(connection.Physical))
            connection.NeedsReset = connection.RollbackOnly = true; // reset off, but a transaction is never inherited
        if (connection.DatabaseChanged)
        {
            // Resets do not restore the current database on every server; a fresh connection is the safe answer.
            Destroy(connection, "database changed by the borrower");
            return;
        }
        if (IsDisposed || connection.HasExpired(now) || connection.Generation != Volatile.Read(ref _generation))
        {
            Destroy(connection, IsDisposed ? "pool disposed" : connection.HasExpired(now) ? "max lifetime reached" : "pool cleared");
            return;
        }
        if (!connection.NeedsReset || !(_resetEnabled || connection.PendingRollback is not null || connection.RollbackOnly))
        {
            connection.NeedsReset = false;
            connection.LastUsedAt = now;
            MakeAvailable(connection, now);
            return;
        }
        if (Dialect.ResetIsLocal)
        {
            // No network: reset inline (SQLite).
            if (TryResetAsync(connection, async: false, CancellationToken.None).GetAwaiter().GetResult())
                MakeAvailable(connection);
            return;
        }
        if (_queueReset && connection.PendingRollback is null && Dialect.TryQueueResetWithNextCommand(connection.Physical))
        {
            // The driver sends the reset together with the next command (Npgsql's own pool does the same): no round trip
            // at all, and the connection is available at once.
            connection.NeedsReset = false;
            connection.LastUsedAt = now;
            MakeAvailable(connection, now);
            return;
        }
        MakeAvailable(connection); // to a waiter (who resets it) or to a background reset
    }

    /// <summary>
    /// Resets one connection waiting in <see cref="_pendingReset"/>, if a borrower has not taken it meanwhile (a caller
    /// that finds no idle connection resets a pending one itself rather than wait for this work item, so progress never
    /// depends on a free thread-pool thread).
    /// </summary>
    private async Task ResetInBackgroundAsync()
    {
        PooledConnection? connection;
        lock (_lock)
        {
            if (!_pendingReset.TryDequeue(out connection))
                return;
            connection.State = SlotState.InUse;
        }
        if (await TryResetAsync(connection, async: true, CancellationToken.None).ConfigureAwait(false))
            MakeAvailable(connection);
    }

    /// <summary>Rolls back a pending transaction and resets the session. False: it failed and the connection was destroyed.</summary>
    private async ValueTask<bool> TryResetAsync(PooledConnection connection, bool async, CancellationToken cancellationToken)
    {
        try
        {
            if (connection.PendingRollback is { } transaction)
            {
                connection.PendingRollback = null;
                if (async)
                    await transaction.RollbackAsync(cancellationToken).ConfigureAwait(false);
                else
                    transaction.Rollback();
                transaction.Dispose();
            }
            var epoch = Volatile.Read(ref _suspectEpoch);
            if (connection.RollbackOnly)
            {
                connection.RollbackOnly = false;
                await Dialect.RollbackAsync(connection.Physical, Options, async, cancellationToken).ConfigureAwait(false);
            }
            if (_resetEnabled)
                await Dialect.ResetAsync(connection.Physical, Options, async, cancellationToken).ConfigureAwait(false);
            connection.NeedsReset = false;
            connection.LastUsedAt = _time.GetTimestamp();
            if (_resetEnabled)
                connection.VerifiedEpoch = epoch; // a reset is a round trip: the connection answered
            return true;
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested)
        {
            Interlocked.Increment(ref Counters.ResetFailures);
            CovetLog.ResetFailed(_logger, Name, connection.Id, e);
            Destroy(connection, "session reset failed");
            return false;
        }
    }

    /// <summary>Closes a physical connection and frees its slot (to a waiter if one is queued).</summary>
    public void Destroy(PooledConnection connection, string reason)
    {
        lock (_lock)
        {
            if (!MarkClosedLocked(connection))
                return;
        }
        FinishDestroy(connection, reason);
    }

    /// <summary>False when already closed (by someone else). Under <see cref="_lock"/>.</summary>
    private bool MarkClosedLocked(PooledConnection connection)
    {
        if (connection.State == SlotState.Closed)
            return false;
        connection.State = SlotState.Closed;
        _all.Remove(connection);
        return true;
    }

    private void FinishDestroy(PooledConnection connection, string reason)
    {
        Interlocked.Increment(ref Counters.ConnectionsDestroyed);
        CovetLog.ConnectionDestroyed(_logger, Name, connection.Id, reason);
        Deadline.DisposeSafely(connection.Physical);
        ReleaseSlot();
    }

    // =====================================================================================================
    // System.Transactions
    // =====================================================================================================

    private PooledConnection? TryTakeEnlisted(Transaction transaction)
    {
        lock (_lock)
        {
            if (_enlisted.TryGetValue(transaction, out var connection) && !connection.Borrowed && connection.State == SlotState.InUse)
                return connection;
            return null;
        }
    }

    private void Enlist(PooledConnection connection, Transaction transaction)
    {
        try
        {
            connection.Physical.EnlistTransaction(transaction);
        }
        catch
        {
            ReturnToPool(connection, _time.GetTimestamp());
            throw;
        }
        connection.NeedsReset = true;
        lock (_lock)
        {
            connection.EnlistedIn = transaction;
            _enlisted.TryAdd(transaction, connection);
        }
        transaction.TransactionCompleted += (_, _) => OnTransactionCompleted(connection, transaction);
    }

    private void OnTransactionCompleted(PooledConnection connection, Transaction transaction)
    {
        bool parked;
        lock (_lock)
        {
            if (_enlisted.TryGetValue(transaction, out var current) && current == connection)
                _enlisted.Remove(transaction);
            connection.EnlistedIn = null;
            parked = !connection.Borrowed && connection.State == SlotState.InUse;
        }
        if (parked)
            ReturnToPool(connection, _time.GetTimestamp());
    }

    // =====================================================================================================
    // Leaks: reclaim and forgotten connections
    // =====================================================================================================

    /// <summary>
    /// The borrower was garbage-collected while open (found by the leak watch: the slot's weak reference to it is empty).
    /// A weak reference rather than a finalizer on the logical connection: re-registering for finalization on every
    /// open and suppressing it on every close cost about 30 ns per checkout, a tenth of the whole cycle.
    /// </summary>
    private void RecoverForgotten(PooledConnection connection, long lease)
    {
        if (Interlocked.CompareExchange(ref connection.Lease, lease + 1, lease) != lease)
            return;
        Interlocked.Increment(ref Counters.ForgottenConnections);
        Interlocked.Increment(ref Counters.LeaksDetected);
        var held = _time.GetElapsedTime(connection.CheckedOutAt);
        CovetLog.ForgottenConnection(_logger, Name, connection.Id, held.TotalSeconds, CheckoutStackTrace.Format(connection.CheckoutTrace));
        TakeBack(connection, "logical connection garbage-collected while open");
    }

    /// <summary>
    /// Closes a slot the pool took back from its borrower (reclaimed or forgotten; the caller won the lease). In one step
    /// under the lock it stops being borrowed, enlisted and live, so neither a later open in the same transaction nor the
    /// transaction's completion can take it for a parked connection before it is gone.
    /// </summary>
    private void TakeBack(PooledConnection connection, string reason)
    {
        bool closed;
        lock (_lock)
        {
            connection.Borrowed = false;
            if (connection.EnlistedIn is { } tx && _enlisted.TryGetValue(tx, out var enlisted) && enlisted == connection)
                _enlisted.Remove(tx);
            connection.EnlistedIn = null;
            closed = MarkClosedLocked(connection);
        }
        if (closed)
            FinishDestroy(connection, reason);
    }

    private void WatchLeaks(long now)
    {
        foreach (var connection in SnapshotAll())
        {
            // A checkout moves the lease to an odd number and every give-back (return, reclaim, recovery) to the next even
            // one, so an odd lease is held: a lease the borrower's Close has just moved on is never mistaken for a held one
            // in the moment before Close clears Borrowed.
            var lease = Volatile.Read(ref connection.Lease);
            if ((lease & 1) == 0 || !connection.Borrowed)
                continue;
            var held = _time.GetElapsedTime(connection.CheckedOutAt, now);
            var trace = connection.CheckoutTrace;
            // The borrower is set before the lease moves, so with the lease unchanged below it is this lease's holder.
            var borrowerAlive = connection.Borrower.TryGetTarget(out _);
            if (Volatile.Read(ref connection.Lease) != lease || !connection.Borrowed)
                continue; // returned (and maybe borrowed again) while we looked

            if (!borrowerAlive)
            {
                RecoverForgotten(connection, lease);
                continue;
            }
            if (!_leakDetection && Options.MaxCheckoutDuration <= TimeSpan.Zero)
                continue;

            if (Options.MaxCheckoutDuration > TimeSpan.Zero && held >= Options.MaxCheckoutDuration)
            {
                if (Interlocked.CompareExchange(ref connection.Lease, lease + 1, lease) != lease)
                    continue;
                if (Interlocked.Exchange(ref connection.LeakReported, 1) == 0)
                    Interlocked.Increment(ref Counters.LeaksDetected);
                Interlocked.Increment(ref Counters.LeaksReclaimed);
                CovetLog.LeakReclaimed(_logger, Name, connection.Id, held.TotalSeconds, Options.MaxCheckoutDuration.TotalSeconds, CheckoutStackTrace.Format(trace));
                TakeBack(connection, "reclaimed: held past MaxCheckoutDuration");
            }
            else if (_leakDetection && held >= Options.LeakDetectionThreshold && Interlocked.CompareExchange(ref connection.LeakReported, 1, 0) == 0)
            {
                // A leak is suspected: from now on (for 15 minutes) every checkout records where it came from.
                Volatile.Write(ref _captureAllUntil, now + ToTimestampTicks(TimeSpan.FromMinutes(15)));
                Interlocked.Increment(ref Counters.LeaksDetected);
                CovetLog.LeakSuspected(_logger, Name, connection.Id, held.TotalSeconds, Options.LeakDetectionThreshold.TotalSeconds,
                    connection.CheckoutThreadId, connection.CheckoutThreadName, CheckoutStackTrace.Format(trace));
            }
        }
    }

    /// <summary>The longest-held checkouts, longest first.</summary>
    public IReadOnlyList<CovetCheckoutInfo> Holders(int max)
    {
        var now = _time.GetTimestamp();
        return SnapshotAll()
            .Where(c => c.Borrowed)
            .Select(c => (Connection: c, Held: _time.GetElapsedTime(c.CheckedOutAt, now), Trace: c.CheckoutTrace))
            .OrderByDescending(h => h.Held)
            .Take(max)
            .Select(h => new CovetCheckoutInfo(h.Held, h.Connection.CheckoutThreadId, h.Connection.CheckoutThreadName,
                h.Trace is null ? null : CheckoutStackTrace.Format(h.Trace)))
            .ToList();
    }

    private CovetPoolExhaustedException ExhaustedException(string? detail, Exception? inner = null)
    {
        Interlocked.Increment(ref Counters.AcquireTimeouts);
        CovetPoolStatistics stats = GetStatistics();
        var holders = Holders(5);
        var holdersText = holders.Count == 0
            ? "   (none)"
            : string.Join("\n", holders.Select((h, i) =>
                $"  #{i + 1} held {h.Held.TotalSeconds:F1} s by thread {h.ThreadId}{(h.ThreadName is null ? "" : $" ({h.ThreadName})")}, opened at:\n{h.StackTrace ?? CheckoutStackTrace.NotCaptured}"));
        // One log entry per episode, not one per rejected caller: at most one a second.
        var now = _time.GetTimestamp();
        var last = Volatile.Read(ref _lastExhaustedLog);
        if ((last == long.MinValue || _time.GetElapsedTime(last, now) >= TimeSpan.FromSeconds(1)) && Interlocked.CompareExchange(ref _lastExhaustedLog, now, last) == last)
            CovetLog.PoolExhausted(_logger, Name, Options.AcquireTimeout.TotalSeconds, stats.Total, stats.Idle, stats.InUse, stats.Waiting, stats.MaxPoolSize, holdersText);
        var message =
            $"Pool '{Name}': timed out after {Options.AcquireTimeout.TotalSeconds:F1} s waiting for a connection" +
            (detail is null ? "" : $" ({detail})") +
            $". Total {stats.Total}, idle {stats.Idle}, in use {stats.InUse}, waiting {stats.Waiting}, max {stats.MaxPoolSize}. " +
            "Raise MaxPoolSize (Covet.MaxPoolSize) or AcquireTimeout (Covet.AcquireTimeout), or find the code holding connections too long. " +
            $"Longest-held checkouts:\n{holdersText}";
        return new CovetPoolExhaustedException(message, inner) { PoolName = Name, Holders = holders };
    }

    // =====================================================================================================
    // Background maintenance: eviction, health checks, leak watch, minimum refill, circuit probe.
    // =====================================================================================================

    private void RunMaintenance()
    {
        if (Interlocked.Exchange(ref _maintenanceRunning, 1) == 1)
            return;
        try
        {
            if (IsDisposed)
                return;
            var now = _time.GetTimestamp();
            WatchLeaks(now);
            EvictIdle(now);
            Resize(now);
            if (Options.HealthCheckInterval > TimeSpan.Zero && _time.GetElapsedTime(_lastHealthCheck, now) >= Options.HealthCheckInterval)
            {
                _lastHealthCheck = now;
                _ = CheckIdleHealthAsync();
            }
            if (_breaker.State != CovetCircuitState.Closed)
                _ = ProbeAsync();
            else
                StartWarmUp();
        }
        catch (Exception e)
        {
            _logger.LogError(e, "Pool {PoolName}: maintenance failed", Name);
        }
        finally
        {
            Volatile.Write(ref _maintenanceRunning, 0);
        }
    }

    /// <summary>Closes idle connections past their lifetime, and idle ones above the minimum past the idle timeout.</summary>
    private void EvictIdle(long now)
    {
        List<PooledConnection> evicted;
        lock (_lock)
        {
            var idleTimeout = Options.IdleTimeout > TimeSpan.Zero && Options.IdleTimeout != Timeout.InfiniteTimeSpan ? Options.IdleTimeout : TimeSpan.MaxValue;
            var total = _total;
            evicted = TakeIdleLocked(c =>
            {
                var evict = c.HasExpired(now)
                    || (total > Math.Max(Options.MinPoolSize, _sizer.WarmTarget) && _time.GetElapsedTime(c.IdleSince, now) >= idleTimeout);
                if (evict)
                    total--;
                return evict;
            });
        }
        foreach (var c in evicted)
            Destroy(c, c.HasExpired(now) ? "max lifetime reached" : "idle timeout");
    }

    /// <summary>
    /// Takes out of the idle set, coldest (bottom of the stack) first, every connection <paramref name="take"/> says yes
    /// to, keeping the others in order; the taken ones are marked in use (their caller closes, tests or hands them on).
    /// Call under <see cref="_lock"/>.
    /// </summary>
    private List<PooledConnection> TakeIdleLocked(Func<PooledConnection, bool> take)
    {
        List<PooledConnection> taken = [];
        var kept = 0;
        for (var i = 0; i < _idleCount; i++)
        {
            var c = _idle[i];
            if (take(c))
            {
                c.State = SlotState.InUse;
                taken.Add(c);
            }
            else
            {
                _idle[kept++] = c;
            }
        }
        Array.Clear(_idle, kept, _idleCount - kept);
        _idleCount = kept;
        return taken;
    }

    /// <summary>Demand-driven sizing: grows the warm set in the background, or lets the coldest idle connections go.</summary>
    private void Resize(long now)
    {
        if (_breaker.State != CovetCircuitState.Closed)
            return;
        int total, idle;
        lock (_lock)
        {
            total = _total;
            idle = _idleCount;
        }
        // Slots being opened in the background are neither idle nor demand: counting them as in use would make warm-up
        // look like load and grow the pool further.
        var delta = _sizer.Evaluate(now, total, Math.Max(0, total - idle - Volatile.Read(ref _warming) - Volatile.Read(ref _backgroundHeld)));
        if (delta > 0)
        {
            lock (_lock)
            {
                if (_disposed)
                    return;
                delta = Math.Min(delta, Options.MaxPoolSize - _total);
                _total += Math.Max(0, delta); // reserve the slots, as warm-up does
            }
            Interlocked.Add(ref _warming, Math.Max(0, delta));
            for (var i = 0; i < delta; i++)
                QueueWarmOne();
        }
        else if (delta < 0)
        {
            List<PooledConnection> surplus;
            var left = -delta;
            lock (_lock)
                surplus = TakeIdleLocked(_ => left-- > 0);
            foreach (var c in surplus)
                Destroy(c, "demand-driven shrink");
        }
    }

    /// <summary>Pings idle connections not used since the last check; removes the dead and refills to the minimum.</summary>
    private async Task CheckIdleHealthAsync()
    {
        List<PooledConnection> toCheck;
        var now = _time.GetTimestamp();
        var interval = ToTimestampTicks(Options.HealthCheckInterval);
        lock (_lock)
            toCheck = TakeIdleLocked(c => now - c.LastUsedAt >= interval); // out of the idle set while we test them
        Interlocked.Add(ref _backgroundHeld, toCheck.Count);
        foreach (var c in toCheck)
        {
            var epoch = Volatile.Read(ref _suspectEpoch);
            bool alive;
            try
            {
                alive = await Dialect.PingAsync(c.Physical, Options, Options.ValidationTimeout, async: true, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception)
            {
                alive = false;
            }
            if (alive)
            {
                c.LastUsedAt = _time.GetTimestamp();
                c.VerifiedEpoch = epoch;
                MakeAvailable(c);
            }
            else
            {
                Interlocked.Increment(ref Counters.HealthCheckFailures);
                CovetLog.HealthCheckFailed(_logger, Name, c.Id);
                Destroy(c, "health check failed");
            }
            Interlocked.Decrement(ref _backgroundHeld);
        }
        StartWarmUp();
    }

    /// <summary>Opens connections in the background up to the minimum.</summary>
    private void StartWarmUp()
    {
        int missing;
        lock (_lock)
        {
            if (_disposed)
                return;
            missing = Math.Max(0, Options.MinPoolSize - _total);
            _total += missing; // reserve the slots now so concurrent ticks do not over-create
        }
        Interlocked.Add(ref _warming, missing);
        for (var i = 0; i < missing; i++)
            QueueWarmOne();
    }

    /// <summary>
    /// Opens one connection in the background, on a thread-pool thread without the caller's execution context: a warm-up
    /// started by a caller inside a TransactionScope must not see its transaction (a driver that enlists on open, such as
    /// a pool over an Npgsql data source, would put an idle connection into someone else's transaction), its AsyncLocals
    /// or its Activity.
    /// </summary>
    private void QueueWarmOne() => ThreadPool.UnsafeQueueUserWorkItem(static pool => _ = pool.WarmOneAsync(), this, preferLocal: false);

    private async Task WarmOneAsync()
    {
        try
        {
            var connection = await CreateAsync(async: true, _time.GetTimestamp(), CancellationToken.None).ConfigureAwait(false);
            MakeAvailable(connection);
        }
        catch (Exception)
        {
            // Logged and counted by CreateAsync; the slot was released. The next tick tries again.
        }
        finally
        {
            Interlocked.Decrement(ref _warming);
        }
    }

    /// <summary>While the circuit is not closed, one background attempt per tick: success closes it before any caller has to try.</summary>
    private async Task ProbeAsync()
    {
        if (Interlocked.Exchange(ref _probing, 1) == 1)
            return; // one probe at a time, however long a black-holed connect takes
        lock (_lock)
        {
            if (_disposed || _total >= Options.MaxPoolSize)
            {
                Volatile.Write(ref _probing, 0);
                return;
            }
            _total++;
        }
        try
        {
            // Bypasses the breaker's open state: probing is how it learns the database is back.
            var started = _time.GetTimestamp();
            var physical = await NewPhysicalAsync(CancellationToken.None).ConfigureAwait(false);
            try
            {
                using var deadline = new Deadline(Options.ValidationTimeout, _time, CancellationToken.None);
                await Deadline.WithinAsync(physical.OpenAsync(deadline.Token), physical, Options.ValidationTimeout, _time, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                Deadline.DisposeSafely(physical);
                _breaker.OnFailure(e);
                ReleaseSlot();
                return;
            }
            MakeAvailable(Adopt(physical, started));
        }
        catch (Exception e)
        {
            _logger.LogError(e, "Pool {PoolName}: circuit probe failed unexpectedly", Name);
        }
        finally
        {
            Volatile.Write(ref _probing, 0);
        }
    }

    // =====================================================================================================
    // Statistics, clearing, disposal
    // =====================================================================================================

    public CovetPoolStatistics GetStatistics()
    {
        int total, idle, waiting;
        lock (_lock)
        {
            total = _total;
            idle = _idleCount;
            waiting = Volatile.Read(ref _waiting);
        }
        var now = _time.GetTimestamp();
        var suspected = _leakDetection
            ? SnapshotAll().Count(c => c.Borrowed && _time.GetElapsedTime(c.CheckedOutAt, now) >= Options.LeakDetectionThreshold)
            : 0;
        var counters = Counters;
        return new CovetPoolStatistics
        {
            PoolName = Name,
            Total = total,
            Idle = idle,
            InUse = total - idle,
            Waiting = waiting,
            MinPoolSize = Options.MinPoolSize,
            MaxPoolSize = Options.MaxPoolSize,
            Checkouts = counters.AcquireTime.Count, // every checkout records its acquire time once
            AcquireP50 = counters.AcquireTime.Percentile(50),
            AcquireP95 = counters.AcquireTime.Percentile(95),
            AcquireP99 = counters.AcquireTime.Percentile(99),
            AcquireMax = counters.AcquireTime.Max,
            UseP50 = counters.UseTime.Percentile(50),
            UseP95 = counters.UseTime.Percentile(95),
            UseP99 = counters.UseTime.Percentile(99),
            ConnectionsCreated = Interlocked.Read(ref counters.ConnectionsCreated),
            ConnectionsDestroyed = Interlocked.Read(ref counters.ConnectionsDestroyed),
            ConnectionFailures = Interlocked.Read(ref counters.ConnectionFailures),
            PrePingFailures = Interlocked.Read(ref counters.PrePingFailures),
            HealthCheckFailures = Interlocked.Read(ref counters.HealthCheckFailures),
            ResetFailures = Interlocked.Read(ref counters.ResetFailures),
            AcquireTimeouts = Interlocked.Read(ref counters.AcquireTimeouts),
            SuspectedLeaks = suspected,
            LeaksDetected = Interlocked.Read(ref counters.LeaksDetected),
            LeaksReclaimed = Interlocked.Read(ref counters.LeaksReclaimed),
            ForgottenConnections = Interlocked.Read(ref counters.ForgottenConnections),
            CircuitRejections = _breaker.Rejections,
            CircuitState = _breaker.State,
            WarmTarget = Math.Max(Options.MinPoolSize, _sizer.WarmTarget),
        };
    }

    /// <summary>Closes every idle connection now; borrowed ones are closed when they come back.</summary>
    public void Clear()
    {
        var idle = TakeAllIdle(bumpGeneration: true, dispose: false);
        foreach (var c in idle)
            Destroy(c, "pool cleared");
        CovetLog.PoolCleared(_logger, Name, idle.Count, GetStatistics().InUse);
    }

    private List<PooledConnection> TakeAllIdle(bool bumpGeneration, bool dispose)
    {
        lock (_lock)
        {
            if (bumpGeneration)
                _generation++;
            if (dispose)
                _disposed = true;
            var idle = TakeIdleLocked(static _ => true);
            while (_pendingReset.TryDequeue(out var pending))
            {
                pending.State = SlotState.InUse;
                idle.Add(pending);
            }
            return idle;
        }
    }

    public void Dispose()
    {
        if (IsDisposed)
            return;
        _maintenanceTimer.Dispose();
        var idle = TakeAllIdle(bumpGeneration: true, dispose: true);
        // The leak watch stops with the maintenance timer: close what forgotten borrowers still hold now.
        foreach (var connection in SnapshotAll())
        {
            var lease = Volatile.Read(ref connection.Lease);
            if ((lease & 1) == 1 && connection.Borrowed && !connection.Borrower.TryGetTarget(out _))
                RecoverForgotten(connection, lease);
        }
        List<Waiter> waiters;
        lock (_lock)
        {
            waiters = [.. _waiters];
            _waiters.Clear();
        }
        foreach (var waiter in waiters)
            waiter.TryFailDisposed();
        _waiterTimer.Dispose();
        foreach (var c in idle)
            Destroy(c, "pool disposed");
        CovetPoolRegistry.Remove(this);
        CovetLog.PoolDisposed(_logger, Name, idle.Count, GetStatistics().InUse);
    }

    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    private List<PooledConnection> SnapshotAll()
    {
        lock (_lock)
            return [.. _all];
    }

    private long ToTimestampTicks(TimeSpan span) =>
        span == Timeout.InfiniteTimeSpan ? long.MaxValue : (long)(span.Ticks * (_time.TimestampFrequency / (double)TimeSpan.TicksPerSecond));

    /// <summary>A pool name built only from the data source, database and provider: never from the connection string's secrets.</summary>
    private static string DescribeWithoutSecrets(ProviderDialect dialect, DbConnection template)
    {
        string? dataSource = null, database = null;
        try
        {
            dataSource = template.DataSource;
            database = template.Database;
        }
        catch (Exception)
        {
            // Some providers need an open connection for these.
        }
        return $"{dialect.Name}://{(string.IsNullOrEmpty(dataSource) ? "?" : dataSource)}/{database}";
    }

    public override string ToString() => Name;
}
