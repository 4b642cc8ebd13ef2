using System.Data.Common;
using System.Transactions;
using Covet.Data.Diagnostics;
using Covet.Data.Health;
using Covet.Data.Providers;
using Covet.Data.Resilience;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Covet.Data.Pooling;

/// <summary>
/// One pool of physical connections for one (provider, connection string): the lock, the idle stack, the slot count,
/// and the fast path of a checkout and of a clean return. Everything else is a named part it delegates to, in the order
/// a checkout meets them: <see cref="Acquisition"/> (the slow path), <see cref="WaiterQueue"/>,
/// <see cref="PhysicalConnections"/>, <see cref="BorrowerValidation"/>, <see cref="TransactionEnlistment"/>,
/// <see cref="LeakWatch"/>, <see cref="PoolStatistics"/>; on the way back <see cref="ReturnPath"/>; beside them
/// <see cref="Housekeeping"/>, run by the process's <see cref="HousekeepingScheduler"/>.
/// </summary>
/// <remarks>
/// <para>Design: one lock (<see cref="Gate"/>) guards the idle stack, the waiter queue, the queue of connections waiting
/// for a background reset, the slot list and count, the generation and disposal (the MySqlConnector shape: simple
/// first). It is held only for a few field writes, never across I/O.</para>
/// <para>Invariant, under <see cref="Gate"/>: <c>Total = idle + in use + being opened + being reset or validated + being
/// closed</c>, and <c>Total ≤ MaxPoolSize</c>. A slot is counted from the moment it is reserved to open a connection until
/// the driver has really closed that connection, so the server never sees more than <c>MaxPoolSize</c> of this pool's
/// connections.</para>
/// <para>Fairness: waiters queue first come, first served (see <see cref="WaiterQueue"/>): a returned connection or a
/// freed slot goes to the oldest live waiter before the idle stack, and a newcomer reaches the idle stack only when no one
/// is waiting.</para>
/// </remarks>
internal sealed class CovetPool : IAsyncDisposable, IDisposable
{
    // --- Identity: fixed for the pool's life. ---
    public string Name { get; }
    public ProviderDialect Dialect { get; }
    public DbProviderFactory InnerFactory { get; }
    public CovetProviderFactory? OwnerFactory { get; }
    public string ProviderConnectionString { get; }
    /// <summary>The connection string as the user gave it (Covet keywords included).</summary>
    public string OriginalConnectionString { get; }
    /// <summary>The command timeout the provider's own connection gives a new command (its default, or its connection string's).</summary>
    public int ProviderCommandTimeout => _template.CommandTimeout(Dialect);
    /// <summary>False where the provider would not pool this connection string (SQLite in memory, Pooling=false): every return destroys.</summary>
    internal bool KeepsIdle { get; }
    internal PoolClock Clock { get; }
    internal ILogger Logger { get; }
    internal bool ResetEnabled { get; }       // sessions are reset between borrowers
    internal bool QueueReset { get; }         // the driver can send the reset with the next command (Npgsql)
    internal bool Enlists { get; }            // checkouts enlist in an ambient transaction, as the provider's Open would

    // --- Settings in force: replaced whole, never mutated, by Reconfiguration (see there for what may change live). ---
    /// <summary>The options in force: the pool's own copy, never changed in place (a reconfiguration installs a new one).</summary>
    public CovetPoolOptions Options { get; internal set; }
    /// <summary>The string physical connections are opened with (the driver's pooling off, its connect timeout capped at the acquire timeout).</summary>
    internal string PhysicalConnectionString { get; set; }
    /// <summary>Covet's DefaultCommandTimeout for commands created through Covet; null when unset or the provider connection string sets its own.</summary>
    public int? CommandTimeoutSeconds { get; internal set; }
    internal bool LeakDetection { get; set; } // LeakDetectionThreshold > 0: checkouts note where they come from

    // --- Guarded by Gate. ---
    internal readonly Lock Gate = new();
    internal readonly IdleConnectionStack Idle = new();
    internal int Total;                                // slots taken (see the invariant above); read racily only as a hint
    internal int Generation;                           // bumped by Clear(); older connections are retired
    internal bool Disposed;
    internal bool Parked;                              // housekeeping parked (see Housekeeping); a checkout wakes it
    internal CovetPoolState State;                     // Running, Paused or Draining (see Pausing); read racily only as a hint
    internal readonly List<PooledConnection> Slots = []; // every live slot, for the leak watch, statistics and shutdown

    // --- The parts. ---
    internal readonly WaiterQueue Waiters;
    internal readonly Acquisition Acquisition;
    internal readonly PhysicalConnections Connections;
    internal readonly BorrowerValidation Validation;
    internal readonly ReturnPath Returns;
    internal readonly TransactionEnlistment Enlistment;
    internal readonly LeakWatch Leaks;
    internal readonly Housekeeping Housekeeping;
    internal readonly Pausing Pausing;
    internal readonly Reconfiguration Reconfiguration;
    internal readonly PoolStatistics Statistics;
    internal readonly PoolCounters Counters = new();
    internal readonly CircuitBreaker Breaker;
    internal readonly DemandSizer Sizer;
    private readonly HousekeepingScheduler _scheduler;
    private readonly ConnectionTemplate _template;

    public CovetPool(DbProviderFactory factory, string providerConnectionString, CovetPoolOptions options, CovetProviderFactory? owner, string originalConnectionString,
        DbDataSource? physicalSource = null)
    {
        options.Validate();
        OriginalConnectionString = originalConnectionString;
        InnerFactory = factory;
        OwnerFactory = owner;
        Dialect = ProviderDialect.For(factory);
        ProviderConnectionString = providerConnectionString;
        Options = options;
        PhysicalConnectionString = Dialect.PhysicalConnectionString(factory, providerConnectionString, options);
        Reconfiguration.Derive(this, options);
        Clock = new PoolClock(options.TimeProvider);
        Logger = options.LoggerFactory?.CreateLogger("Covet.Data.Pool") ?? NullLogger.Instance;
        ResetEnabled = options.ResetSessionOnReturn && Dialect.CanReset(options);
        QueueReset = ResetEnabled && Dialect.CanQueueReset(PhysicalConnectionString, options);
        Enlists = Dialect.EnlistsInAmbientTransaction(providerConnectionString);
        KeepsIdle = Dialect.KeepsIdle(providerConnectionString); // conformance: what the provider does not pool, Covet does not either
        _template = new ConnectionTemplate(factory, providerConnectionString, physicalSource);
        Name = options.PoolName ?? _template.DescribeWithoutSecrets(Dialect);

        Waiters = new WaiterQueue(this);
        Acquisition = new Acquisition(this);
        Connections = new PhysicalConnections(this, factory, physicalSource);
        Validation = new BorrowerValidation(this);
        Returns = new ReturnPath(this);
        Enlistment = new TransactionEnlistment(this);
        Leaks = new LeakWatch(this);
        Housekeeping = new Housekeeping(this);
        Pausing = new Pausing(this);
        Reconfiguration = new Reconfiguration(this, physicalSource is not null);
        Statistics = new PoolStatistics(this);
        Breaker = new CircuitBreaker(options.CircuitBreakerFailureThreshold, options.CircuitBreakerBreakDuration, options.TimeProvider, Logger, Name);
        Sizer = new DemandSizer(this);

        CovetLog.PoolCreated(Logger, Name, options.MinPoolSize, options.MaxPoolSize, Dialect.Name);
        CovetPoolRegistry.Add(this);
        CovetMetrics.EnsureCreated();
        _scheduler = HousekeepingScheduler.For(options.TimeProvider);
        _scheduler.Schedule(this, Clock.Now() + Clock.Units(options.MaintenanceInterval));
        if (options.MinPoolSize > 0)
            Connections.WarmUp();
    }

    /// <summary>An unopened provider connection with the user's connection string, for metadata while a logical connection is closed.</summary>
    public DbConnection Template => _template.Connection;

    public bool IsDisposed => Volatile.Read(ref Disposed);

    // =====================================================================================================
    // Checkout: the fast path here, everything else in Acquisition.
    // =====================================================================================================

    /// <summary>Borrows a connection through the slow path (see <see cref="Acquisition"/>).</summary>
    public ValueTask<(PooledConnection Connection, long Lease)> AcquireAsync(object borrower, bool async, CancellationToken cancellationToken) =>
        Acquisition.AcquireAsync(borrower, async, cancellationToken);

    /// <summary>The fast path, or a bound wait for a plain async open (see <see cref="Acquisition.TryAcquireReadyOrWait"/>).</summary>
    public Task? TryAcquireReadyOrWait(CovetDbConnection borrower, CancellationToken cancellationToken) =>
        Acquisition.TryAcquireReadyOrWait(borrower, cancellationToken);

    /// <summary>
    /// The fast path of a checkout: the top idle connection when it needs nothing before use (current generation, not
    /// expired, clean, used within the alive window and not suspect), no ambient transaction and the breaker closed. It
    /// runs synchronously with one read of the coarse clock and no async state machine; false means "take
    /// <see cref="AcquireAsync"/>", which handles every other case (and nothing was taken), including a paused pool.
    /// </summary>
    public bool TryAcquireReady(object borrower, out PooledConnection connection, out long lease)
    {
        connection = null!;
        lease = 0;
        if (Breaker.State == CovetCircuitState.Open || (Enlists && Transaction.Current is not null))
            return false;
        var now = Clock.Now();
        bool wake;
        lock (Gate)
        {
            if (Disposed || State != CovetPoolState.Running || TakeReadyIdleLocked(now) is not { } ready)
                return false; // paused: the slow path queues the caller
            connection = ready;
            wake = WakeLocked();
        }
        if (wake)
            Wake();
        // Taken on the caller's own thread, before any await, so the trace shows the caller.
        lease = Statistics.CheckOutFast(connection, borrower, LeakDetection ? Leaks.CaptureSite(now) : default, now);
        return true;
    }

    /// <summary>The top idle connection, taken, when it may be given out as it is; else null (nothing taken). Under <see cref="Gate"/>.</summary>
    internal PooledConnection? TakeReadyIdleLocked(long now) =>
        Idle.Peek() is { } top && Validation.IsReady(top, now) ? Idle.Pop() : null;

    // =====================================================================================================
    // Return: the clean path here, the rest in ReturnPath.
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
        var now = Clock.Now();
        if (connection.PreciseCheckoutAt != 0)
            Statistics.RecordUse(Clock.Time.GetElapsedTime(connection.PreciseCheckoutAt));
        if (connection.LeakReported != 0)
            CovetLog.LeakReturned(Logger, Name, connection.Id, Clock.Elapsed(connection.CheckedOutAt, now).TotalSeconds);
        connection.CheckoutTrace = null;
        connection.PendingRollback = pendingRollback;
        if (pendingRollback is not null)
            connection.NeedsReset = true;
        if (Enlistment.ReleaseBorrower(connection))
            Returns.ReturnToPool(connection, now);
        // else: parked until its transaction completes (TransactionEnlistment hands it back then)
    }

    /// <summary>A borrower's connection died: its siblings may be dead too, so each is validated before its next handout.</summary>
    public void OnConnectionBroken() => Validation.OnConnectionBroken();

    /// <summary>
    /// Makes a live connection available: to the oldest waiter (who resets it first if it is dirty), else onto the idle
    /// stack when clean, or into the background-reset queue when dirty. While paused no waiter is served (the idle stack
    /// keeps it for <see cref="Pausing.Resume"/>); while draining it is closed.
    /// </summary>
    /// <param name="connection">The connection.</param>
    /// <param name="now">A pool-clock timestamp taken just now, if the caller has one (one clock read less on the return path).</param>
    internal void MakeAvailable(PooledConnection connection, long now = 0)
    {
        while (true)
        {
            Waiter? waiter = null;
            bool stale = false, queueReset = false;
            lock (Gate)
            {
                // More live connections than the maximum (it was lowered live): the pool shrinks as they come back. Live
                // slots, not Total: slots already being closed are going anyway, and counting them would shrink it below.
                if (Disposed || connection.Generation != Generation || State == CovetPoolState.Draining || Slots.Count > Options.MaxPoolSize)
                {
                    stale = true;
                }
                else if (State == CovetPoolState.Running && (waiter = Waiters.DequeueLiveLocked()) is not null)
                {
                    connection.State = SlotState.InUse;
                }
                else if (connection.NeedsReset)
                {
                    // No one is waiting: reset in the background, off every caller's path, then come back here.
                    Returns.EnqueuePendingLocked(connection);
                    queueReset = true;
                }
                else
                {
                    Idle.Push(connection, now != 0 ? now : Clock.Now());
                    return;
                }
            }
            if (stale)
            {
                Destroy(connection, IsDisposed ? "pool disposed" : State == CovetPoolState.Draining ? "pool drained"
                    : connection.Generation != Generation ? "pool cleared" : "pool shrunk");
                return;
            }
            if (queueReset)
            {
                Returns.ResetInBackground(); // queued outside the lock: the lock covers field writes only
                return;
            }
            if (waiter!.TryHand(connection))
                return;
        }
    }

    // =====================================================================================================
    // Slots
    // =====================================================================================================

    /// <summary>
    /// Frees a slot: a waiter gets it (to open a connection), otherwise the count goes down (while paused always: the
    /// waiters get slots on <see cref="Pausing.Resume"/>; while draining the last slot completes the drain; and while the
    /// pool is above a lowered maximum, so it shrinks to it).
    /// </summary>
    internal void ReleaseSlot()
    {
        while (true)
        {
            Waiter? waiter;
            TaskCompletionSource? emptied = null;
            lock (Gate)
            {
                waiter = Disposed || State != CovetPoolState.Running || Total > Options.MaxPoolSize ? null : Waiters.DequeueLiveLocked();
                if (waiter is null)
                {
                    Total--;
                    emptied = Pausing.OnSlotFreedLocked();
                }
            }
            if (waiter is null)
            {
                emptied?.TrySetResult(); // outside the lock: its continuations run asynchronously anyway
                return;
            }
            if (waiter.TryHand(null))
                return;
        }
    }

    internal List<PooledConnection> SnapshotAll()
    {
        lock (Gate)
            return [.. Slots];
    }

    /// <summary>Closes a physical connection and frees its slot (to a waiter if one is queued).</summary>
    public void Destroy(PooledConnection connection, string reason)
    {
        lock (Gate)
        {
            if (!MarkClosedLocked(connection))
                return;
        }
        Connections.Close(connection, reason);
    }

    /// <summary>False when already closed (by someone else). Under <see cref="Gate"/>.</summary>
    internal bool MarkClosedLocked(PooledConnection connection)
    {
        if (connection.State == SlotState.Closed)
            return false;
        connection.State = SlotState.Closed;
        Slots.Remove(connection);
        Statistics.OnSlotRetiredLocked(connection);
        return true;
    }

    // =====================================================================================================
    // Housekeeping, statistics, clearing, disposal
    // =====================================================================================================

    /// <summary>Unparks the housekeeping (see <see cref="Housekeeping"/>): true when the caller must call <see cref="Wake"/> after the lock.</summary>
    internal bool WakeLocked()
    {
        if (!Parked)
            return false;
        Parked = false;
        return true;
    }

    /// <summary>Makes the housekeeping due within one maintenance interval (a parked pool became busy, or its state changed by hand).</summary>
    internal void Wake() => _scheduler.Schedule(this, Clock.Now() + Clock.Units(Options.MaintenanceInterval));

    public CovetPoolStatistics GetStatistics() => Statistics.Snapshot();

    /// <summary>The longest-held checkouts, longest first.</summary>
    public IReadOnlyList<CovetCheckoutInfo> Holders(int max) => Leaks.Holders(max);

    internal CovetPoolExhaustedException ExhaustedException(string? detail, Exception? inner = null) => Statistics.Exhausted(detail, inner);

    /// <summary>Closes every idle connection now; borrowed ones are closed when they come back.</summary>
    public void Clear()
    {
        var idle = TakeAllIdle(dispose: false);
        foreach (var c in idle)
            Destroy(c, "pool cleared");
        CovetLog.PoolCleared(Logger, Name, idle.Count, GetStatistics().InUse);
    }

    private List<PooledConnection> TakeAllIdle(bool dispose)
    {
        lock (Gate)
        {
            if (dispose)
                Disposed = true;
            return TakeAllIdleLocked();
        }
    }

    /// <summary>Retires every connection of the current generation (borrowed ones close when returned) and takes the idle and pending ones. Under <see cref="Gate"/>.</summary>
    internal List<PooledConnection> TakeAllIdleLocked()
    {
        Generation++;
        var none = 0;
        var idle = Idle.TakeWhere(ref none, static (PooledConnection _, ref int _) => true);
        Returns.TakeAllPendingLocked(idle);
        return idle;
    }

    public void Dispose()
    {
        if (IsDisposed)
            return;
        var idle = TakeAllIdle(dispose: true);
        // The leak watch stops with the housekeeping: close what forgotten borrowers still hold now.
        Leaks.SweepForgotten();
        List<Waiter> waiters;
        lock (Gate)
            waiters = Waiters.TakeAllLocked();
        foreach (var waiter in waiters)
            waiter.TryFailDisposed();
        Waiters.DisposeTimer();
        foreach (var c in idle)
            Destroy(c, "pool disposed");
        CovetPoolRegistry.Remove(this);
        CovetLog.PoolDisposed(Logger, Name, idle.Count, GetStatistics().InUse);
    }

    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    public override string ToString() => Name;
}
